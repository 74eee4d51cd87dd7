"""GridSample rows: `F.grid_sample` in every mode, padding mode and align_corners, 4-D and 5-D,
against onnxruntime (grids reach past [-1, 1], so the padding modes are exercised)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.exporters.torch_op_rows import Feed, build, check

rng = np.random.default_rng(5)
X4, X5 = (2, 3, 5, 6), (2, 2, 3, 4, 5)


def grid(*shape):
    return Feed((rng.uniform(-1.3, 1.3, shape)).astype(np.float32))


ROWS = [
    ("bilinear_zeros", "GridSample", {}, [X4, grid(2, 4, 7, 2)], 1, 16),
    ("bilinear_border_align", "GridSample", {"padding_mode": "border", "align_corners": 1}, [X4, grid(2, 4, 7, 2)], 1, 16),
    ("nearest_reflection", "GridSample", {"mode": "nearest", "padding_mode": "reflection"}, [X4, grid(2, 3, 3, 2)], 1, 16),
    ("bicubic_border", "GridSample", {"mode": "bicubic", "padding_mode": "border"}, [X4, grid(2, 4, 5, 2)], 1, 16),
    ("cubic_reflection_align_opset20", "GridSample", {"mode": "cubic", "padding_mode": "reflection", "align_corners": 1},
     [X4, grid(2, 4, 5, 2)], 1, 20),
    ("linear_volumetric_opset20", "GridSample", {"mode": "linear"}, [X5, grid(2, 2, 3, 4, 3)], 1, 20),
    ("nearest_volumetric_align_opset20", "GridSample", {"mode": "nearest", "align_corners": 1}, [X5, grid(2, 2, 3, 4, 3)], 1, 20),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_grid_sample_matches_onnxruntime(row, torch):
    check(row, torch)


def test_volumetric_cubic_is_refused_clearly(torch):
    import irbridge
    from irbridge.errors import UnsupportedError

    model, _ = build("GridSample", {"mode": "cubic"}, [X5, grid(2, 2, 3, 4, 3)], 1, 20)
    with pytest.raises(UnsupportedError, match="GridSample.*volumetric.*cubic"):
        irbridge.export(irbridge.normalize(irbridge.load(model)), "torch", check=False)
