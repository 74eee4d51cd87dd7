"""Rows for the ops of issue 18 (Resize, indexing, attention family, quantization): one
one-node model per row, exported to PyTorch and compared with onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.exporters.torch_op_rows import Feed, check

rng = np.random.default_rng(3)


def f32(*vals):
    return np.array(vals, np.float32)


def i64(*vals):
    return np.array(vals, np.int64)


X = (1, 2, 5, 6)
ROWS = [
    # Resize: nn.Upsample where torch's kernel is ONNX's, the exact helper elsewhere
    ("resize_nearest_upsample", "Resize", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                           "nearest_mode": "floor"}, [X, None, f32(1, 1, 2, 2)], 1, 18),
    ("resize_linear_half_pixel", "Resize", {"mode": "linear"}, [X, None, f32(1, 1, 2, 1.5)], 1, 18),
    ("resize_linear_align_corners", "Resize", {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
     [X, None, f32(1, 1, 2, 2)], 1, 18),
    ("resize_cubic", "Resize", {"mode": "cubic"}, [X, None, f32(1, 1, 2, 2)], 1, 18),
    ("resize_cubic_exclude_outside", "Resize", {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
     [X, None, f32(1, 1, 0.6, 1.7)], 1, 18),
    ("resize_nearest_half_pixel_sizes", "Resize", {"mode": "nearest"}, [X, None, None, i64(1, 2, 7, 4)], 1, 18),
    ("resize_linear_asymmetric_down", "Resize", {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
     [X, None, f32(1, 1, 0.6, 0.5)], 1, 18),
    ("resize_linear_antialias", "Resize", {"mode": "linear", "antialias": 1}, [X, None, f32(1, 1, 0.5, 0.5)], 1, 18),
    ("resize_tf_crop_and_resize", "Resize", {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
                                             "extrapolation_value": 2.0},
     [X, f32(0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2), None, i64(1, 2, 4, 5)], 1, 18),
    ("resize_axes_not_larger", "Resize", {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
     [X, None, None, i64(8, 8)], 1, 18),
    # indexing
    ("gather_nd", "GatherND", {}, [(3, 4, 5), Feed(np.array([[0, 1], [2, -1]], np.int64))], 1, 18),
    ("gather_nd_batch_dims", "GatherND", {"batch_dims": 1}, [(2, 4, 5), Feed(np.array([[1], [3]], np.int64))], 1, 18),
    ("scatter_nd", "ScatterND", {}, [(4, 5), Feed(np.array([[1], [3]], np.int64)), (2, 5)], 1, 18),
    ("scatter_nd_add", "ScatterND", {"reduction": "add"}, [(4, 5), Feed(np.array([[1, 2], [1, 2]], np.int64)), (2,)], 1, 18),
    ("scatter_elements_max", "ScatterElements", {"axis": 1, "reduction": "max"},
     [(3, 4), Feed(np.array([[0, 1], [3, 3], [-1, 0]], np.int64)), (3, 2)], 1, 18),
    ("one_hot", "OneHot", {"axis": 1}, [Feed(np.array([[0, 3], [-1, 5]], np.int64)), np.array(4, np.int64), f32(-1, 2)], 1, 18),
    ("non_zero", "NonZero", {}, [Feed((rng.random((3, 4)) > 0.5).astype(np.float32))], 1, 18),
    ("cumsum_exclusive_reverse", "CumSum", {"exclusive": 1, "reverse": 1}, [(3, 4), np.array(1, np.int64)], 1, 18),
    ("range", "Range", {}, [Feed(np.array(2.0, np.float32)), Feed(np.array(9.5, np.float32)), Feed(np.array(1.5, np.float32))], 1, 18),
    ("trilu_lower", "Trilu", {"upper": 0}, [(4, 5), np.array(1, np.int64)], 1, 18),
    ("einsum_trace", "Einsum", {"equation": "bii->b"}, [(2, 4, 4)], 1, 18),
    ("layer_norm_axis1", "LayerNormalization", {"axis": 1}, [(2, 3, 4), rng.standard_normal((3, 4)).astype(np.float32)], 1, 18),
    # opset 23
    ("attention_sdpa_causal", "Attention", {"is_causal": 1}, [(2, 4, 6, 8), (2, 4, 6, 8), (2, 4, 6, 8)], 1, 23),
    ("attention_gqa_3d_mask", "Attention", {"q_num_heads": 4, "kv_num_heads": 2},
     [(2, 6, 32), (2, 7, 16), (2, 7, 16), Feed(rng.random((6, 7)) > 0.3)], 1, 23),
    ("rms_normalization", "RMSNormalization", {"epsilon": 1e-6}, [(2, 5, 8), rng.standard_normal(8).astype(np.float32)], 1, 23),
    ("rotary_embedding", "RotaryEmbedding", {},
     [(2, 3, 5, 8), rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32),
      Feed(np.tile(np.arange(5, dtype=np.int64), (2, 1)))], 1, 23),
    # quantization
    ("quantize_uint8", "QuantizeLinear", {}, [(2, 3, 4), f32(0.05), np.array(120, np.uint8)], 1, 18),
    ("quantize_int8_per_axis", "QuantizeLinear", {"axis": 1}, [(2, 3, 4), f32(0.05, 0.02, 0.1), np.array([1, -2, 0], np.int8)], 1, 18),
    ("dequantize", "DequantizeLinear", {}, [Feed(rng.integers(0, 255, (2, 5)).astype(np.uint8)), f32(0.1), np.array(128, np.uint8)], 1, 18),
    ("qlinear_matmul", "QLinearMatMul", {},
     [Feed(rng.integers(0, 255, (3, 4)).astype(np.uint8)), f32(0.02), np.array(110, np.uint8),
      rng.integers(0, 255, (4, 5)).astype(np.uint8), f32(0.03), np.array(130, np.uint8), f32(0.05), np.array(120, np.uint8)], 1, 18),
    ("qlinear_conv", "QLinearConv", {"pads": [1, 1, 1, 1]},
     [Feed(rng.integers(0, 255, (1, 2, 5, 5)).astype(np.uint8)), f32(0.02), np.array(100, np.uint8),
      rng.integers(0, 255, (3, 2, 3, 3)).astype(np.uint8), f32(0.01, 0.02, 0.03), np.array([120, 128, 130], np.uint8),
      f32(0.3), np.array(128, np.uint8), rng.integers(-500, 500, 3).astype(np.int32)], 1, 18),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_new_op_matches_onnxruntime(row, torch):
    check(row, torch)


def test_resize_upsample_is_nn_upsample(torch):
    gm = check(ROWS[0], torch)
    assert any(isinstance(m, torch.nn.Upsample) for m in gm.modules())


def test_every_row_op_is_registered():
    from irbridge.exporters.torch.registry import supported

    assert {r[1] for r in ROWS} <= set(supported())
