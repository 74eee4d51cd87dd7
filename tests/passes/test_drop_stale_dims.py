"""drop-stale-dims: a size recorded at the example's length where the input's sequence is free
(the dynamo exporter's value_info) is forgotten, so every exporter builds a model that runs at
any length; sizes that hold at every length stay."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from irbridge.passes.drop_stale_dims import DropStaleDims
from onnx import TensorProto, helper

import irbridge
from tests.conftest import assert_close, make_model, ort_run, seeded


def stale_reshape() -> onnx.ModelProto:
    """x [batch, seq, 6] -> Reshape(x, Concat([-1], Shape(x)[1:2], [2, 3])) -> y, recorded as
    [batch, 8, 2, 3] (the example's length) -> Mul(w [2, 3]) -> out, recorded likewise."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "one", "two"], ["seq"]),
        helper.make_node("Concat", ["minus1", "seq", "two_three"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
        helper.make_node("Mul", ["y", "w"], ["out"]),
    ]
    inits = [helper.make_tensor("one", TensorProto.INT64, [1], [1]),
             helper.make_tensor("two", TensorProto.INT64, [1], [2]),
             helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
             helper.make_tensor("two_three", TensorProto.INT64, [2], [2, 3]),
             onnx.numpy_helper.from_array(seeded((2, 3), seed=5), "w")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 6])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 8, 2, 3])
    model = make_model(nodes, [x], [out], inits)
    model.graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 2, 3]))
    return model


def test_recorded_example_length_becomes_the_free_dim():
    m = ir.serde.deserialize_model(stale_reshape())
    result = DropStaleDims()(m)
    assert result.modified
    y = next(n for n in m.graph if n.op_type == "Reshape").outputs[0]
    out = m.graph.outputs[0]
    for v in (y, out):
        assert [d if isinstance(d, int) else d.value for d in v.shape] == ["batch", "seq", 2, 3], v.shape
    assert not DropStaleDims()(m).modified  # idempotent
    assert [d if isinstance(d, int) else d.value for d in x_shape(m)] == ["batch", "seq", 6]  # inputs untouched


def x_shape(m):
    return m.graph.inputs[0].shape


def test_sizes_that_hold_at_every_length_are_kept():
    model = stale_reshape()
    model.graph.value_info[0].type.tensor_type.shape.dim[1].dim_param = "seq"  # recorded right
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "seq"
    m = ir.serde.deserialize_model(model)
    assert not DropStaleDims()(m).modified
    # a model with no free dim is left alone (no reading is made)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    fixed = ir.serde.deserialize_model(make_model([helper.make_node("Relu", ["x"], ["y"])], [x], [y]))
    assert not DropStaleDims()(fixed).modified


def test_default_pipeline_runs_it_first():
    from irbridge import passes

    assert passes.DEFAULT_PIPELINE[0] == "drop-stale-dims"


@pytest.mark.parametrize("target", ["keras", "tf", "torch"])
def test_stale_reshape_converts_and_runs_at_two_lengths(target, tmp_path):
    """Each export, reloaded as a user would (torch: the module), matches onnxruntime at the
    recorded length and at another one, at two batch sizes."""
    pytest.importorskip("keras" if target != "torch" else "torch")
    model = stale_reshape()
    out = {"keras": tmp_path / "m.keras", "tf": tmp_path / "sm", "torch": None}[target]
    res = irbridge.convert(model, target, out)  # checked against onnxruntime at batch 2/3, seq 8/13
    assert res.report.ok, str(res.report)
    if target == "keras":
        import keras

        run = keras.saving.load_model(out)
    elif target == "tf":
        import tensorflow as tf

        serve = tf.saved_model.load(str(out)).signatures["serving_default"]

        def run(x):
            return next(iter(serve(tf.constant(x)).values()))
    else:
        import torch

        def run(x):
            with torch.no_grad():
                return res.exported(torch.from_numpy(x))
    for batch, seq in ((2, 8), (3, 11)):  # 8 is the recorded length, 11 is not
        x = seeded((batch, seq, 6), seed=batch + seq)
        [ref] = ort_run(model, {"x": x})
        assert_close(np.asarray(run(x)), ref)
