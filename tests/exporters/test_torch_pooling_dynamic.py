"""AveragePool with auto_pad SAME and count_include_pad=0 (TF's AvgPool padding='SAME') over free
spatial dims: the PyTorch export computes the pads and the divisor from the live size. Each row
is a one-node ONNX model with free batch and sides, exported once, then run at odd and even
sizes (batch 2 and 3) and compared with onnxruntime; the written model.py is reloaded as a user
would and run at the same sizes."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.conftest import assert_close, make_model, ort_run

# (id, attrs, channels, spatial sizes per run: odd and even sides, so uneven SAME pads occur)
ROWS = [
    ("upper_k3_s1", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}, 3, [(7, 9), (8, 6)]),
    ("upper_k3_s2", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, 2, [(9, 8), (10, 7)]),
    ("upper_k2_s1", {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, 2, [(5, 6), (8, 7)]),
    ("lower_k2_s1", {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}, 2, [(5, 6), (8, 7)]),
    ("lower_k3_s2", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}, 2, [(9, 8), (10, 7)]),
    ("upper_k4x3_s3x2", {"kernel_shape": [4, 3], "strides": [3, 2], "auto_pad": "SAME_UPPER"}, 2, [(11, 9), (12, 8)]),
    ("upper_1d_k4_s2", {"kernel_shape": [4], "strides": [2], "auto_pad": "SAME_UPPER"}, 3, [(9,), (12,)]),
    ("lower_3d_k2", {"kernel_shape": [2, 3, 2], "auto_pad": "SAME_LOWER"}, 2, [(3, 5, 4), (4, 4, 5)]),
]


def _model(attrs, channels, rank):
    free = ["N", channels] + [f"S{k}" for k in range(rank)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, free)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return make_model([helper.make_node("AveragePool", ["x"], ["y"], **attrs)], [x], [y])


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_avg_pool_same_exclude_pad_with_free_sides(row, torch, tmp_path):
    import irbridge
    from tests.exporters.test_torch_dynamic import load_as_user

    _, attrs, channels, sizes = row
    proto = _model(attrs, channels, len(attrs["kernel_shape"]))
    res = irbridge.convert(proto, "torch", tmp_path / "out")  # irbridge's own check at two sizes
    assert res.report.ok
    source = (tmp_path / "out" / "model.py").read_text()
    assert "def avg_pool_same_exclude_pad(" in source
    user = load_as_user(tmp_path / "out")
    rng = np.random.default_rng(17)
    for batch, spatial in zip((2, 3), sizes):
        x = rng.standard_normal((batch, channels, *spatial)).astype(np.float32)
        ref = ort_run(proto, {"x": x})[0]
        with torch.no_grad():
            for model in (res.exported, user):
                got = model(torch.from_numpy(x))
                assert_close(got.numpy(), ref, rtol=1e-6, atol_scale=1e-6)


def test_uneven_pads_divide_by_the_covered_count(torch):
    """The corner of a SAME_UPPER 2x2 window at the bottom-right edge covers one element: the
    output there is that element, not a quarter of it (numpy from the op's definition)."""
    import irbridge

    proto = _model({"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}, 1, 2)
    gm = irbridge.export(irbridge.normalize(irbridge.load(proto)), "torch", check=False)
    for h, w in ((3, 4), (5, 5)):
        x = np.random.default_rng(h).standard_normal((2, 1, h, w)).astype(np.float32)
        xp = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
        count = np.pad(np.ones((h, w)), ((0, 1), (0, 1)))
        windows = lambda a: a[..., :-1, :-1] + a[..., 1:, :-1] + a[..., :-1, 1:] + a[..., 1:, 1:]  # noqa: E731
        ref = windows(xp) / windows(count)
        with torch.no_grad():
            assert_close(gm(torch.from_numpy(x)).numpy(), ref, rtol=1e-6, atol_scale=1e-6)
