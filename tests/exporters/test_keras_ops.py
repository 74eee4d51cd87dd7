"""The per-op table (shared with the PyTorch exporter) run through the Keras exporter: each
one-node model exported to a channels-last Keras model and compared with the reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import assert_close, make_model, ort_run
from tests.exporters.test_torch_ops import ROWS, _model, i64, reference, w

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")

# rows of the shared table the Keras exporter claims (ids), and the layers they must become
KERAS_ROWS = {
    "conv": "Conv2D", "conv_asym_pads": "Conv2D", "conv_same_upper": "Conv2D", "conv_same_lower": "Conv2D",
    "conv_group_dilation": "Conv2D", "conv_depthwise": "DepthwiseConv2D",
    "conv_transpose": "Conv2DTranspose", "conv_transpose_outpad": "Conv2DTranspose",
    "conv_transpose_asym": "Conv2DTranspose",
    "gemm_linear": "Dense", "gemm_no_trans": "Dense", "matmul_const": "Dense",
    "batchnorm": "BatchNormalization", "lrn_odd": "LRN", "lrn_even": "LRN",
    "maxpool": "MaxPooling2D", "maxpool_ceil": "MaxPooling2D", "maxpool_pads": "MaxPooling2DPadded",
    "maxpool_asym": "MaxPooling2D", "maxpool_same": "MaxPooling2D",
    "avgpool": "AveragePooling2D", "avgpool_pads_incl": "AveragePooling2D",
    "avgpool_pads_excl": "AveragePooling2D", "avgpool_asym_excl": "AveragePooling2DExcludePad",
    "global_avgpool": "GlobalAveragePooling2D", "global_maxpool": "GlobalMaxPooling2D",
    "reduce_mean_spatial": "GlobalAveragePooling2D",
    "relu": "ReLU", "leaky_relu": "LeakyReLU", "prelu_channel": "PReLU", "prelu_broadcast": "PReLU",
    "sigmoid": "Activation", "tanh": "Activation", "elu": "ELU", "softplus": "Activation",
    "softsign": "Activation", "clip_relu6": "ReLU", "clip": "ConstantOp", "softmax": "Softmax",
    "add_broadcast": None, "sub_const": "ConstantOp", "mul_scalar": "ConstantOp", "sum3": None,
    "max2": "Maximum", "concat": "Concatenate", "flatten": "Flatten", "reshape": "Reshape",
    "transpose": None, "dropout": None,  # inference Dropout folds away
    "instancenorm": "GroupNormalization", "topk": "TensorOp", "depth_to_space": "TensorOp",
    "depth_to_space_crd": "TensorOp", "space_to_depth": "TensorOp",
}
XFAIL = {"add_broadcast": "Add of two run-time tensors of different ranks (refused: UnsupportedError)",
         "sum3": "Sum of run-time tensors of different ranks (refused: UnsupportedError)"}


@pytest.mark.parametrize("row", [r for r in ROWS if r[0] in KERAS_ROWS], ids=lambda r: r[0])
def test_op_matches_the_reference(row):
    import irbridge
    from irbridge.exporters.keras import info
    from irbridge.exporters.keras.runner import keras_runner

    row_id, op, attrs, shapes, consts = row
    if row_id in XFAIL:
        pytest.xfail(XFAIL[row_id])
    model, feeds = _model(op, attrs, shapes, consts)
    ref = reference(row_id, model, feeds)
    km = irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    got = keras_runner(km, info(km)).run(feeds)
    for r, g in zip(ref, got.values()):
        assert_close(g, r)
    if KERAS_ROWS[row_id]:
        assert KERAS_ROWS[row_id] in {type(layer).__name__ for layer in km.layers}
    assert not any(isinstance(layer, keras.layers.Permute) for layer in km.layers) or op == "Transpose"


def test_layerwise_verification_finds_a_broken_keras_layer():
    import numpy as np
    from irbridge.models import onnx_zoo

    import irbridge

    m = irbridge.normalize(irbridge.load(onnx_zoo.light_model("squeezenet", seed=0)))
    km = irbridge.export(m, "keras")
    rep = irbridge.verify(m, km, layerwise=True)
    assert rep.ok and len(rep.layers) > 20
    layer = km.get_layer("fire3_expand3x3")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.ascontiguousarray(np.swapaxes(kernel, 0, 1)), bias])  # a layout bug
    rep = irbridge.verify(m, km, layerwise=True)
    assert not rep.ok and rep.first_divergence.layer == "fire3/expand3x3"


def test_layers_given_weights_keep_their_default_initializers_in_the_config():
    """Layers are built with zero initializers (no random fill only to overwrite it); the saved
    config still names Keras's defaults, and the weights are the ONNX model's."""
    import irbridge
    from tests.conftest import make_model

    rng = np.random.default_rng(5)
    w, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    model = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                       [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    km = irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    dense = next(layer for layer in km.layers if layer.weights)
    config = dense.get_config()
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["bias_initializer"]["class_name"] == "Zeros"
    np.testing.assert_array_equal(dense.get_weights()[0], w.T)
    np.testing.assert_array_equal(dense.get_weights()[1], b)


# --- ops only the Keras exporter's table has a row for: (id, op, attrs, inputs {name: array},
# constants {name: array}, opset, the layer it must become, numpy reference where onnxruntime has
# no kernel for that opset (written from the op's definition), or None for onnxruntime)
_r = np.random.default_rng(11)


def _ints(shape, lo, hi, dtype):
    return _r.integers(lo, hi, shape).astype(dtype)


def _np_cumprod(f):
    return [np.cumprod(f["x"], axis=1)]


def _np_rms(f):
    x = f["x"]
    return [x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * f["s"]]


def _np_swish(f):
    x = f["x"]
    return [x / (1 + np.exp(-0.5 * x))]


KERAS_EXTRA_ROWS = [
    ("group_norm_18", "GroupNormalization", {"num_groups": 2, "epsilon": 1e-3}, {"x": (2, 6, 5)},
     {"scale": w(2), "bias": w(2)}, 18, "GroupNormalization", None),
    ("group_norm_21", "GroupNormalization", {"num_groups": 3}, {"x": (2, 6, 4, 3)},
     {"scale": w(6), "bias": w(6)}, 21, "GroupNormalization", None),
    ("group_norm_runtime_scale", "GroupNormalization", {"num_groups": 2}, {"x": (2, 4, 5), "s": (4,), "b": (4,)},
     {}, 21, "TensorOp", None),
    ("layer_norm_stats", "LayerNormalization", {"axis": 1}, {"x": (2, 3, 4), "s": (3, 4), "b": (4,)}, {}, 18,
     "TensorOp", None),
    ("rms_norm_runtime_scale", "RMSNormalization", {"axis": -1}, {"x": (2, 3, 4), "s": (4,)}, {}, 23, "TensorOp",
     _np_rms),
    ("bitwise_and", "BitwiseAnd", {}, {"a": _ints((2, 5), -100, 100, np.int32), "b": _ints((2, 5), -100, 100, np.int32)},
     {}, 18, "TensorOp", None),
    ("bitwise_or", "BitwiseOr", {}, {"a": _ints((2, 5), 0, 255, np.uint8), "b": _ints((5,), 0, 255, np.uint8)},
     {}, 18, "TensorOp", None),
    ("bitwise_xor", "BitwiseXor", {}, {"a": _ints((2, 5), -9, 9, np.int64), "b": _ints((2, 5), -9, 9, np.int64)},
     {}, 18, "TensorOp", None),
    ("bitwise_not", "BitwiseNot", {}, {"a": _ints((2, 5), -100, 100, np.int16)}, {}, 18, "TensorOp", None),
    ("bit_shift_right", "BitShift", {"direction": "RIGHT"}, {"a": _ints((2, 5), 0, 255, np.uint8)},
     {"b": _ints((5,), 0, 8, np.uint8)}, 18, "TensorOp", None),
    ("bit_shift_left", "BitShift", {"direction": "LEFT"}, {"a": _ints((2, 5), 0, 1000, np.uint32),
                                                           "b": _ints((2, 5), 0, 20, np.uint32)}, {}, 18, "TensorOp", None),
    ("cumprod", "CumProd", {}, {"x": (2, 4, 3)}, {"axis": np.array(1, np.int64)}, 26, "TensorOp", _np_cumprod),
    ("topk_smallest", "TopK", {"axis": -1, "largest": 0}, {"x": (2, 3, 7)}, {"k": i64(3)}, 18, "TensorOp", None),
    ("hardmax", "Hardmax", {"axis": 1}, {"x": (2, 5, 3)}, {}, 18, "TensorOp", None),
    ("one_hot", "OneHot", {"axis": 1}, {"i": _ints((2, 4), -5, 5, np.int64)},
     {"depth": np.array(5, np.int64), "values": np.array([-1.5, 2.0], np.float32)}, 18, "TensorOp", None),
    ("eye_like", "EyeLike", {"k": 1}, {"x": (4, 5)}, {}, 18, "TensorOp", None),
    ("lp_norm", "LpNormalization", {"axis": 1, "p": 2}, {"x": (2, 5, 3)}, {}, 18, "TensorOp", None),
    ("mvn", "MeanVarianceNormalization", {}, {"x": (2, 3, 4, 5)}, {}, 18, "TensorOp", None),
    ("thresholded_relu", "ThresholdedRelu", {"alpha": 0.3}, {"x": (2, 5)}, {}, 18, "TensorOp", None),
    ("shrink", "Shrink", {"bias": 0.2, "lambd": 0.4}, {"x": (2, 5)}, {}, 18, "TensorOp", None),
    ("celu", "Celu", {"alpha": 0.7}, {"x": (2, 5)}, {}, 18, "TensorOp", None),
    ("swish", "Swish", {"alpha": 0.5}, {"x": (2, 5)}, {}, 24, "TensorOp", _np_swish),
    ("scatter_nd_add", "ScatterND", {"reduction": "add"}, {"x": (4, 5, 3)},
     {"i": np.array([[1], [-1]], np.int64), "u": w(2, 5, 3)}, 18, "TensorOp", None),
    ("scatter_elements_axis1", "ScatterElements", {"axis": 1}, {"x": (3, 6)},
     {"i": np.array([[0, 5], [2, -1], [4, 1]], np.int64), "u": w(3, 2)}, 18, "TensorOp", None),
    ("pad_reflect_3d", "Pad", {"mode": "reflect"}, {"x": (2, 5, 6)}, {"pads": i64(0, 1, 2, 0, 2, 1)}, 18,
     "TensorOp", None),
    ("pad_edge_crop", "Pad", {"mode": "edge"}, {"x": (2, 5, 6)}, {"pads": i64(0, -1, 3, 0, 2, -2)}, 18,
     "TensorOp", None),
    ("pad_wrap", "Pad", {"mode": "wrap"}, {"x": (2, 5, 6)}, {"pads": i64(0, 2, 1, 0, 1, 3)}, 19, "TensorOp", None),
    ("pad_constant_axes", "Pad", {}, {"x": (2, 3, 5, 4)},
     {"pads": i64(1, 2, 2, 1), "value": np.array(1.5, np.float32), "axes": i64(-1, 1)}, 18, "TensorOp", None),
]


def _extra_model(op, attrs, inputs, consts, opset):
    feeds, infos, names = {}, [], []
    for k, (name, spec) in enumerate(inputs.items()):
        x = spec if isinstance(spec, np.ndarray) else np.random.default_rng(k).standard_normal(spec).astype(np.float32)
        feeds[name] = x
        infos.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape))
    names = list(inputs) + list(consts)
    outs = {"TopK": ["y", "i"], "LayerNormalization": ["y", "mean", "inv_std"]}.get(op, ["y"])
    node = helper.make_node(op, names, outs, **attrs)
    inits = [numpy_helper.from_array(np.asarray(c), n) for n, c in consts.items()]
    model = make_model([node], infos, [helper.make_empty_tensor_value_info(o) for o in outs], inits, opset=opset)
    return onnx.shape_inference.infer_shapes(model), feeds


@pytest.mark.parametrize("row", KERAS_EXTRA_ROWS, ids=lambda r: r[0])
def test_keras_only_op_matches_the_reference(row):
    import irbridge
    from irbridge.exporters.keras import info
    from irbridge.exporters.keras.runner import keras_runner

    _id, op, attrs, inputs, consts, opset, layer, numpy_ref = row
    model, feeds = _extra_model(op, attrs, inputs, consts, opset)
    ref = numpy_ref(feeds) if numpy_ref else ort_run(model, feeds)
    km = irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    got = keras_runner(km, info(km)).run(feeds)
    assert len(got) == len(ref)
    for r, g in zip(ref, got.values()):
        assert np.asarray(g).dtype == np.asarray(r).dtype
        assert_close(g, r)
    assert layer in {type(x).__name__ for x in km.layers}


def _torch_group_norm_graph(groups, channels, spatial):
    """nn.GroupNorm(groups, channels) after a Conv as TorchScript exports it (free batch and
    spatial dims): Reshape([0, G, -1]) -> InstanceNormalization(ones, zeros) -> Reshape(Shape(x))
    -> Mul(gamma [C, 1...]) -> Add(beta [C, 1...])."""
    ones = (1,) * spatial
    dims = ["batch"] + [f"s{k}" for k in range(spatial)]
    nodes = [
        helper.make_node("Conv", ["x", "k", "kb"], ["c"], pads=[1] * (2 * spatial)),
        helper.make_node("Reshape", ["c", "grouped"], ["r"]),
        helper.make_node("InstanceNormalization", ["r", "ones", "zeros"], ["n"], epsilon=1e-5),
        helper.make_node("Shape", ["c"], ["shape"]),
        helper.make_node("Reshape", ["n", "shape"], ["back"]),
        helper.make_node("Mul", ["back", "gamma"], ["scaled"]),
        helper.make_node("Add", ["scaled", "beta"], ["y"]),
    ]
    inits = {"k": w(channels, 3, *([3] * spatial)), "kb": w(channels), "grouped": i64(0, groups, -1),
             "ones": np.ones(groups, np.float32), "zeros": np.zeros(groups, np.float32),
             "gamma": w(channels, *ones), "beta": w(channels, *ones)}
    return make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dims[0], 3] + dims[1:])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                      [numpy_helper.from_array(v, n) for n, v in inits.items()])


@pytest.mark.parametrize("groups,channels,spatial", [(2, 6, 1), (6, 6, 1), (4, 8, 2)])
def test_torch_group_norm_pattern_is_one_group_normalization(groups, channels, spatial):
    """The decomposed nn.GroupNorm becomes one GroupNormalization(groups) over the channel axis as
    the Conv's output is held (channels-last), right at batch 2 and 3 and two spatial sizes."""
    import irbridge
    from irbridge.exporters.keras import info
    from irbridge.exporters.keras.runner import keras_runner

    model = _torch_group_norm_graph(groups, channels, spatial)
    km = irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    norms = [x for x in km.layers if isinstance(x, keras.layers.GroupNormalization)]
    assert len(norms) == 1 and norms[0].groups == groups and norms[0].axis in (-1, spatial + 1)
    assert not any(type(x).__name__ in ("TensorOp", "Permute", "Reshape") for x in km.layers)
    run = keras_runner(km, info(km))
    for batch, size in ((2, 7), (3, 10)):
        feeds = {"x": np.random.default_rng(batch).standard_normal((batch, 3) + (size,) * spatial).astype(np.float32)}
        assert_close(run.run(feeds)["y"], ort_run(model, feeds)[0])



@pytest.mark.parametrize("op", ["Reshape", "ReduceSum", "Tile"])
def test_run_time_parameters_are_refused_by_name(op):
    """An integer operand that sets a layer's form (a Reshape's shape, a reduction's axes, Tile's
    repeats) computed at run time is named in the refusal, with what to do."""
    import irbridge
    from irbridge.errors import UnsupportedError

    nodes = [helper.make_node(op, ["x", "p"], ["y"], name="the_node")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 6]),
              helper.make_tensor_value_info("p", TensorProto.INT64, [None])]
    model = make_model(nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(UnsupportedError) as err:
        irbridge.export(irbridge.normalize(irbridge.load(model)), "keras", check=False)
    assert "the_node" in err.value.message and "its input 1 'p' is computed at run time" in err.value.message
    assert "fold it into the source graph" in err.value.message
