"""recover-prelu: TF's composed PReLU (relu(x) + c * relu(-x)) becomes one PRelu; onnxruntime
gives the same outputs before and after, and look-alikes are left alone."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import make_model, ort_run, seeded


def _composed(slope: np.ndarray, op="Add", swap=False, neg_of="x"):
    nodes = [helper.make_node("Relu", ["x"], ["pos"]),
             helper.make_node("Neg", [neg_of], ["negx"]),
             helper.make_node("Relu", ["negx"], ["rneg"]),
             helper.make_node("Mul", ["c", "rneg"] if swap else ["rneg", "c"], ["scaled"]),
             helper.make_node(op, ["scaled", "pos"] if swap and op == "Add" else ["pos", "scaled"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 5, 6])]
    if neg_of != "x":
        inputs.append(helper.make_tensor_value_info(neg_of, TensorProto.FLOAT, ["batch", 4, 5, 6]))
    proto = make_model(nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                       [numpy_helper.from_array(slope, "c")])
    return ir.serde.deserialize_model(proto)


@pytest.mark.parametrize("slope, op, swap", [
    (seeded((4, 1, 1)), "Add", False),  # per channel, c = -alpha
    (seeded((4, 1, 1)), "Add", True),
    (np.array(0.25, np.float32), "Add", False),  # one shared slope
    (seeded((4, 1, 1)), "Sub", False),  # relu(x) - alpha * relu(-x)
])
def test_composed_prelu_becomes_one_prelu_with_the_same_outputs(slope, op, swap):
    model = _composed(slope, op, swap)
    before = ir.to_proto(model)
    passes.run(model, ["recover-prelu"])
    assert [n.op_type for n in model.graph] == ["PRelu"]
    assert model.graph.outputs[0].name == "y"
    for b in (2, 3):
        x = seeded((b, 4, 5, 6), seed=b)
        np.testing.assert_allclose(ort_run(ir.to_proto(model), {"x": x})[0], ort_run(before, {"x": x})[0],
                                   rtol=1e-6, atol=1e-6)


def test_a_negation_of_another_tensor_is_left_alone():
    model = _composed(seeded((4, 1, 1)), neg_of="other")
    passes.run(model, ["recover-prelu"])
    assert "PRelu" not in [n.op_type for n in model.graph]


def test_a_slope_that_would_grow_x_is_left_alone():
    model = _composed(seeded((2, 4, 1, 1)))  # PRelu broadcasts the slope to x, never x to the slope
    passes.run(model, ["recover-prelu"])
    assert "PRelu" not in [n.op_type for n in model.graph]
