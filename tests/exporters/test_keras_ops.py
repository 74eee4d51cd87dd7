"""The per-op table (shared with the PyTorch exporter) run through the Keras exporter: each
one-node model exported to a channels-last Keras model and compared with the reference."""

from __future__ import annotations

import pytest

from tests.conftest import assert_close
from tests.exporters.test_torch_ops import ROWS, _model, reference

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
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

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
