"""Convolution, pooling and resize of every rank through the Keras exporter: one ONNX node per
variant with a free batch (and, where marked, free spatial dims), exported once and compared
with onnxruntime at two batch sizes; the layer the node must become is checked too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import assert_close, make_model, ort_run

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")

rng = np.random.default_rng(16)


def w(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def f32(*vals):
    return np.array(vals, dtype=np.float32)


def i64(*vals):
    return np.array(vals, dtype=np.int64)


# (id, op, attrs, data shape ("N" the free batch; other strings free dims too),
#  constants {input index: array}, the Keras layer it must become, opset)
ROWS = [
    # --- 1-D convolution -----------------------------------------------------------------------
    ("conv1d", "Conv", {"strides": [2]}, ("N", 3, 10), {1: w(4, 3, 3), 2: w(4)}, "Conv1D", 18),
    ("conv1d_pads_dilation", "Conv", {"pads": [2, 1], "dilations": [2]}, ("N", 3, 11), {1: w(4, 3, 3)}, "Conv1D", 18),
    ("conv1d_same_upper", "Conv", {"auto_pad": "SAME_UPPER", "strides": [3]}, ("N", 2, 10), {1: w(3, 2, 4)}, "Conv1D", 18),
    ("conv1d_grouped", "Conv", {"group": 2, "pads": [1, 1]}, ("N", 4, 9), {1: w(6, 2, 3), 2: w(6)}, "Conv1D", 18),
    ("conv1d_depthwise", "Conv", {"group": 4, "pads": [1, 1]}, ("N", 4, 9), {1: w(8, 1, 3)}, "DepthwiseConv1D", 18),
    ("conv1d_free_length", "Conv", {"strides": [5]}, ("N", 1, "T"), {1: w(8, 1, 10)}, "Conv1D", 18),
    # --- 3-D convolution -----------------------------------------------------------------------
    ("conv3d", "Conv", {"pads": [1] * 6}, ("N", 2, 4, 5, 6), {1: w(3, 2, 3, 3, 3), 2: w(3)}, "Conv3D", 18),
    ("conv3d_asym_strides", "Conv", {"pads": [0, 1, 2, 1, 0, 1], "strides": [1, 2, 2]}, ("N", 2, 5, 6, 7),
     {1: w(4, 2, 3, 3, 2)}, "Conv3D", 18),
    ("conv3d_grouped", "Conv", {"group": 2, "dilations": [1, 2, 1]}, ("N", 4, 4, 6, 5), {1: w(4, 2, 2, 2, 2)},
     "Conv3D", 18),
    # --- transposed convolution ----------------------------------------------------------------
    ("conv_transpose1d", "ConvTranspose", {"strides": [2], "pads": [1, 0]}, ("N", 3, 6), {1: w(3, 4, 3), 2: w(4)},
     "Conv1DTranspose", 18),
    ("conv_transpose1d_outpad", "ConvTranspose", {"strides": [3], "output_padding": [1]}, ("N", 2, 5),
     {1: w(2, 3, 4)}, "Conv1DTranspose", 18),
    ("conv_transpose3d", "ConvTranspose", {"strides": [2, 2, 1], "pads": [1, 0, 1, 0, 1, 0]}, ("N", 2, 3, 4, 4),
     {1: w(2, 3, 3, 3, 2), 2: w(3)}, "Conv3DTranspose", 18),
    ("conv_transpose_output_shape", "ConvTranspose", {"strides": [2, 2], "output_shape": [9, 10]}, ("N", 2, 4, 5),
     {1: w(2, 3, 3, 3)}, "Conv2DTranspose", 18),
    ("conv_transpose_same_upper", "ConvTranspose", {"strides": [2, 2], "auto_pad": "SAME_UPPER"}, ("N", 2, 4, 5),
     {1: w(2, 3, 3, 3)}, "Conv2DTranspose", 18),
    # --- pooling, 1-D and 3-D ------------------------------------------------------------------
    ("maxpool1d", "MaxPool", {"kernel_shape": [3], "strides": [2]}, ("N", 3, 11), {}, "MaxPooling1D", 18),
    ("maxpool1d_pads", "MaxPool", {"kernel_shape": [3], "pads": [1, 1], "strides": [2]}, ("N", 3, 10), {},
     "PaddedPooling", 18),
    ("maxpool1d_ceil_free", "MaxPool", {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}, ("N", 2, "T"), {},
     "PaddedPooling", 18),
    ("maxpool3d", "MaxPool", {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]}, ("N", 2, 4, 6, 5), {},
     "MaxPooling3D", 18),
    ("maxpool3d_ceil", "MaxPool", {"kernel_shape": [3, 3, 3], "strides": [2, 2, 2], "ceil_mode": 1},
     ("N", 2, 6, 7, 8), {}, "PaddedPooling", 18),
    ("avgpool1d", "AveragePool", {"kernel_shape": [4], "strides": [2]}, ("N", 3, 12), {}, "AveragePooling1D", 18),
    ("avgpool1d_pads_incl", "AveragePool", {"kernel_shape": [3], "pads": [1, 2], "count_include_pad": 1},
     ("N", 3, 9), {}, "AveragePooling1D", 18),
    ("avgpool1d_pads_excl", "AveragePool", {"kernel_shape": [3], "pads": [2, 1], "strides": [2]}, ("N", 3, 9), {},
     "PaddedPooling", 18),
    ("avgpool3d", "AveragePool", {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]}, ("N", 2, 4, 6, 6), {},
     "AveragePooling3D", 18),
    ("avgpool3d_pads_excl", "AveragePool", {"kernel_shape": [3, 3, 3], "pads": [1] * 6}, ("N", 2, 4, 5, 5), {},
     "AveragePooling3D", 18),
    # ceil_mode: the partial last window's divisor, with and without the pads counted
    ("avgpool_ceil_same", "AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
     ("N", 2, 8, 8), {}, "AveragePooling2D", 18),  # the overhang is TF's 'same' pad, not counted
    ("avgpool_ceil_free", "AveragePool", {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}, ("N", 2, "T"), {},
     "PaddedPooling", 18),
    ("avgpool_ceil_pads_incl", "AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                              "pads": [1, 1, 1, 1], "count_include_pad": 1}, ("N", 2, 8, 9), {},
     "PaddedPooling", 18),
    ("avgpool_ceil_pads_excl", "AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                              "pads": [1, 0, 1, 0]}, ("N", 2, 8, 9), {}, "PaddedPooling", 18),
    ("avgpool1d_ceil_incl", "AveragePool", {"kernel_shape": [4], "strides": [3], "ceil_mode": 1, "pads": [1, 1],
                                           "count_include_pad": 1}, ("N", 3, 10), {}, "PaddedPooling", 18),
    ("avgpool3d_ceil", "AveragePool", {"kernel_shape": [2, 3, 3], "strides": [2, 2, 2], "ceil_mode": 1},
     ("N", 2, 5, 6, 7), {}, "PaddedPooling", 18),
    ("lppool", "LpPool", {"kernel_shape": [2, 2], "p": 3, "pads": [1, 0, 0, 1]}, ("N", 2, 5, 5), {},
     "PaddedPooling", 18),
    ("global_avgpool1d", "GlobalAveragePool", {}, ("N", 3, 7), {}, "GlobalAveragePooling1D", 18),
    ("global_maxpool3d", "GlobalMaxPool", {}, ("N", 3, 3, 4, 5), {}, "GlobalMaxPooling3D", 18),
]


def make(op, attrs, shape, consts, opset, n_inputs=None):
    """The one-node model: input 0 the data (free dims named), then the constants."""
    n_inputs = n_inputs or max([0, *consts]) + 1
    names = ["x"] + [f"c{i}" if i in consts else "" for i in range(1, n_inputs)]
    inits = [numpy_helper.from_array(np.asarray(a), f"c{i}") for i, a in consts.items()]
    node = helper.make_node(op, names, ["y"], **attrs)
    model = make_model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits, opset=opset)
    return onnx.shape_inference.infer_shapes(model)


def sizes_of(shape, k):
    """Two different sizes of the free dims: batch 2 then 3, a free length 23 then 31."""
    return tuple(d if isinstance(d, int) else (2 + k if d == "N" else 23 + 8 * k) for d in shape)


def check(model, shape, layer=None):
    import irbridge
    import irbridge.keras_layers  # noqa: F401
    from irbridge.exporters.keras import info
    from irbridge.exporters.keras.runner import keras_runner

    km = irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    run = keras_runner(km, info(km))
    for k in range(2):
        feeds = {"x": np.random.default_rng(k).standard_normal(sizes_of(shape, k)).astype(np.float32)}
        ref = ort_run(model, feeds)
        got = run.run(feeds)
        assert_close(got["y"], ref[0])
    kinds = {type(layer).__name__ for layer in km.layers}
    if layer:
        assert layer in kinds, kinds
    assert "Permute" not in kinds
    return km


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_conv_and_pool(row):
    _id, op, attrs, shape, consts, layer, opset = row
    check(make(op, attrs, shape, consts, opset), shape, layer)


# --- Resize: (id, attrs, data shape, scales | None, sizes | None, the Keras layer) ---------------
UP = f32(1, 1, 2, 3)
DOWN = f32(1, 1, 0.6, 0.8)
RESIZE_ROWS = [
    ("nearest_default", {"mode": "nearest"}, ("N", 2, 4, 5), f32(1, 1, 2, 2), None, "UpSampling2D"),
    ("nearest_asym_floor", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                            "nearest_mode": "floor"}, ("N", 2, 4, 5), UP, None, "UpSampling2D"),
    ("nearest_asym_round", {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"},
     ("N", 2, 4, 5), UP, None, "Resize"),
    ("nearest_ceil", {"mode": "nearest", "nearest_mode": "ceil"}, ("N", 2, 4, 5), f32(1, 1, 1.5, 2.5), None, "Resize"),
    ("nearest_prefer_ceil", {"mode": "nearest", "nearest_mode": "round_prefer_ceil"}, ("N", 2, 8, 6), DOWN, None,
     "Resize"),
    ("nearest_prefer_floor_down", {"mode": "nearest"}, ("N", 2, 8, 6), f32(1, 1, 0.5, 0.5), None, "Resize"),
    ("nearest_align_corners", {"mode": "nearest", "coordinate_transformation_mode": "align_corners"},
     ("N", 2, 4, 5), UP, None, "Resize"),
    ("nearest_tf_half_pixel", {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
     ("N", 2, 4, 5), f32(1, 1, 1.7, 2.2), None, "Resize"),
    ("nearest_1d", {"mode": "nearest"}, ("N", 3, 7), f32(1, 1, 3), None, "UpSampling1D"),
    ("nearest_3d", {"mode": "nearest"}, ("N", 2, 2, 3, 4), f32(1, 1, 2, 2, 2), None, "UpSampling3D"),
    ("nearest_free_hw", {"mode": "nearest"}, ("N", 2, "H", "W"), f32(1, 1, 2, 2), None, "UpSampling2D"),
    ("linear_half_pixel", {"mode": "linear"}, ("N", 2, 4, 5), f32(1, 1, 2, 2), None, "UpSampling2D"),
    ("linear_pytorch_half_pixel", {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
     ("N", 2, 4, 5), UP, None, "UpSampling2D"),
    ("linear_sizes", {"mode": "linear", "axes": [2, 3]}, ("N", 2, 4, 5), None, i64(7, 9), "Resizing"),
    ("linear_sizes_down", {"mode": "linear", "axes": [2, 3]}, ("N", 2, 9, 8), None, i64(4, 3), "Resizing"),
    ("linear_align_corners", {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
     ("N", 2, 4, 5), UP, None, "Resize"),
    ("linear_asymmetric", {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
     ("N", 2, 4, 5), f32(1, 1, 1.5, 2.5), None, "Resize"),
    ("linear_half_pixel_fraction", {"mode": "linear"}, ("N", 2, 5, 5), f32(1, 1, 1.7, 0.7), None, "Resize"),
    ("linear_half_pixel_symmetric", {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
     ("N", 2, 5, 5), f32(1, 1, 1.7, 0.7), None, "Resize"),
    ("linear_antialias_down", {"mode": "linear", "antialias": 1}, ("N", 2, 9, 8), DOWN, None, "Resize"),
    ("linear_1d_free", {"mode": "linear"}, ("N", 3, "T"), f32(1, 1, 2.5), None, "Resize"),
    ("linear_3d", {"mode": "linear"}, ("N", 2, 3, 4, 4), f32(1, 1, 2, 1.5, 2), None, "Resize"),
    ("linear_tf_crop_and_resize", {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
                                   "extrapolation_value": 2.5, "axes": [2, 3]},
     ("N", 2, 6, 6), None, i64(4, 5), "Resize"),
    ("cubic", {"mode": "cubic"}, ("N", 2, 4, 5), f32(1, 1, 2, 2), None, "Resize"),
    ("cubic_a05_exclude", {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, ("N", 2, 4, 5), UP,
     None, "Resize"),
    ("cubic_align_corners", {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
     ("N", 2, 4, 5), DOWN, None, "Resize"),
    ("cubic_antialias_down", {"mode": "cubic", "antialias": 1}, ("N", 2, 9, 8), DOWN, None, "Resize"),
    ("cubic_asymmetric_sizes", {"mode": "cubic", "coordinate_transformation_mode": "asymmetric", "axes": [2, 3]},
     ("N", 2, 4, 5), None, i64(6, 3), "Resize"),
    ("sizes_axes", {"mode": "nearest", "axes": [3, 2]}, ("N", 2, 4, 5), None, i64(10, 8), "UpSampling2D"),
    ("keep_aspect_not_larger", {"mode": "linear", "keep_aspect_ratio_policy": "not_larger", "axes": [2, 3]},
     ("N", 2, 4, 6), None, i64(7, 8), "Resize"),
]


@pytest.mark.parametrize("row", RESIZE_ROWS, ids=[r[0] for r in RESIZE_ROWS])
def test_resize(row):
    _id, attrs, shape, scales, sizes, layer = row
    consts = {}
    if scales is not None:
        consts[2] = scales
    if sizes is not None:
        consts[3] = sizes
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        consts[1] = f32(0.1, 0.2, 0.9, 1.2)
    check(make("Resize", attrs, shape, consts, 19, n_inputs=4 if sizes is not None else 3), shape, layer)


def test_conv_whose_input_channels_are_unknown():
    """A Conv whose input's channel count the graph does not state (SegFormer's decode head reads a
    Concat of tensors resized to run-time sizes): Keras is told it from the weight (a checked
    `tf.ensure_shape`), at two batch sizes and two image sizes."""
    import irbridge
    from irbridge.exporters.keras import info
    from irbridge.exporters.keras.runner import keras_runner

    node = helper.make_node("Conv", ["x", "c1", "c2"], ["y"], pads=[1, 1, 1, 1])
    model = make_model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "C", "H", "W"])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                       [numpy_helper.from_array(w(6, 4, 3, 3), "c1"), numpy_helper.from_array(w(6), "c2")], opset=17)
    km = irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    run = keras_runner(km, info(km))
    for k, side in enumerate((9, 14)):
        feeds = {"x": np.random.default_rng(k).standard_normal((2 + k, 4, side, side + 3)).astype(np.float32)}
        assert_close(run.run(feeds)["y"], ort_run(model, feeds)[0])
    assert "Conv2D" in {type(layer).__name__ for layer in km.layers}
