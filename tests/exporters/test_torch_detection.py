"""NonMaxSuppression (exact helper, no torchvision) against onnxruntime: both box formats,
several batches and classes, score and IoU thresholds; and the helper travels in model.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ort_run
from tests.exporters.torch_op_rows import Feed, build, check, export_matches

rng = np.random.default_rng(11)


def boxes(b, n, center=False):
    xy = rng.uniform(0, 10, (b, n, 2))
    wh = rng.uniform(1, 4, (b, n, 2))
    if center:
        return Feed(np.concatenate([xy + wh / 2, wh], -1).astype(np.float32))
    corners = np.concatenate([xy, xy + wh], -1)[..., [1, 0, 3, 2]]  # y1, x1, y2, x2
    flip = rng.random((b, n)) > 0.5  # some boxes given as (y2, x1, y1, x2): ONNX takes any diagonal
    corners[flip] = corners[flip][:, [2, 1, 0, 3]]
    return Feed(corners.astype(np.float32))


def scores(b, c, n):
    return Feed(rng.random((b, c, n)).astype(np.float32))


f32 = lambda v: np.array(v, np.float32)  # noqa: E731
i64 = lambda v: np.array(v, np.int64)  # noqa: E731
ROWS = [
    ("corners_iou", "NonMaxSuppression", {}, [boxes(1, 30), scores(1, 1, 30), i64(10), f32(0.3)], 1, 11),
    ("two_batches_three_classes_score", "NonMaxSuppression", {},
     [boxes(2, 25), scores(2, 3, 25), i64(6), f32(0.4), f32(0.3)], 1, 11),
    ("center_point_box", "NonMaxSuppression", {"center_point_box": 1},
     [boxes(2, 20, center=True), scores(2, 2, 20), i64(20), f32(0.2)], 1, 11),
    ("no_limit_given", "NonMaxSuppression", {}, [boxes(1, 8), scores(1, 1, 8)], 1, 11),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_nms_matches_onnxruntime(row, torch):
    check(row, torch)


def test_nms_helper_travels_in_model_py(torch, tmp_path):
    from irbridge.exporters.torch import load_saved, save

    _id, op, attrs, inputs, n_out, opset = ROWS[1]
    model, feeds = build(op, attrs, inputs, n_out, opset)
    ref = ort_run(model, feeds)
    assert ref[0].shape[0] > 6  # several batches and classes selected
    gm = export_matches(model, feeds, ref, torch)
    save(gm, tmp_path / "nms")
    text = (tmp_path / "nms" / "model.py").read_text()
    assert "def non_max_suppression(" in text and "def _suppression(" in text and "torchvision" not in text
    got = load_saved(tmp_path / "nms")(*[torch.from_numpy(feeds[n]) for n in gm.irbridge_inputs])
    np.testing.assert_array_equal(got.numpy(), ref[0])
