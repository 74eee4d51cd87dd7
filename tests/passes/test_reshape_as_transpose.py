"""reshape-as-transpose: a Reshape that moves only size-1 axes becomes the Transpose it is
(outputs before and after compared in onnxruntime at two batch sizes), and a one-channel Keras
CNN then exports taking the images it was trained on."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import make_model, ort_run, seeded


def _reshape(in_shape, target, out_name="y"):
    shape = numpy_helper.from_array(np.array(target, np.int64), "shape")
    w = numpy_helper.from_array(seeded((2, 1, 3, 3)), "w")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="r"),
             helper.make_node("Conv", ["r", "w"], [out_name], name="conv")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                       [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)], [shape, w])
    return ir.serde.deserialize_model(proto)


@pytest.mark.parametrize("in_shape, target, perm", [
    (["batch", 8, 6, 1], [-1, 1, 8, 6], [0, 3, 1, 2]),  # tf2onnx's NHWC -> NCHW of a grey image
    ([1, 8, 6, 1], [1, 1, 8, 6], [0, 3, 1, 2]),
    (["batch", 8, 6, 1], [0, 1, 8, 6], [0, 3, 1, 2]),  # 0 copies the free batch
])
def test_a_reshape_that_moves_size_1_axes_becomes_a_transpose(in_shape, target, perm):
    model = _reshape(in_shape, target)
    before = ir.to_proto(model)
    passes.run(model, ["reshape-as-transpose"])
    ops = [n.op_type for n in model.graph]
    assert ops == ["Transpose", "Conv"]
    assert list(model.graph.node(0).attributes["perm"].value) == perm
    batches = (2, 3) if isinstance(in_shape[0], str) else (1,)
    for b in batches:
        x = seeded((b, *in_shape[1:]), seed=b)
        np.testing.assert_array_equal(ort_run(ir.to_proto(model), {"x": x})[0], ort_run(before, {"x": x})[0])


@pytest.mark.parametrize("in_shape, target", [
    ([2, 4, 9, 1], [2, 1, 6, 6]),  # the real dims change: a true reshape
    (["batch", 3, 8, 6], [-1, 3, 6, 8]),  # 8x6 -> 6x8 is not a transpose
    (["batch", "h", 6, 1], [-1, 1, 0, 6]),  # -1 and a copied free dim: cannot be told
])
def test_true_reshapes_are_left_alone(in_shape, target):
    model = _reshape(in_shape, target)
    passes.run(model, ["reshape-as-transpose"])
    assert [n.op_type for n in model.graph] == ["Reshape", "Conv"]


def test_a_one_channel_keras_cnn_exports_taking_nhwc_images():
    keras = pytest.importorskip("keras")
    import irbridge

    inp = keras.Input((28, 28, 1), name="img")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    out = keras.layers.Dense(3, name="d")(keras.layers.Flatten(name="f")(x))
    km = keras.Model(inp, out)
    exported = irbridge.convert(km, "keras").exported
    assert tuple(exported.inputs[0].shape) == (None, 28, 28, 1)
    for b in (2, 3):
        images = seeded((b, 28, 28, 1), seed=b)
        np.testing.assert_allclose(np.asarray(exported(images)), np.asarray(km(images)), rtol=1e-4, atol=1e-5)
