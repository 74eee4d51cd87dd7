"""eliminate-identity: onnx_ir's pass, except where it would make one value the output of two
graphs (an If branch inside a Loop body forwarding a value the body also outputs)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper

import irbridge


def _loop_with_forwarding_branch() -> onnx.ModelProto:
    """Loop body: v = v_in + 1; v_out = If(iter > 0, then: Identity(v), else: v + 1); the body
    outputs v as its scan output too (so the then-branch's Identity input is a body output)."""
    vi = lambda n, shape, t=T.FLOAT: helper.make_tensor_value_info(n, t, shape)  # noqa: E731
    then_g = helper.make_graph([helper.make_node("Identity", ["v"], ["t_out"])], "then", [], [vi("t_out", ["N", 3])])
    else_g = helper.make_graph([helper.make_node("Add", ["v", "one"], ["e_out"])], "else", [], [vi("e_out", ["N", 3])])
    body = helper.make_graph(
        [helper.make_node("Add", ["v_in", "one"], ["v"]),
         helper.make_node("Greater", ["iter", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["v_out"], then_branch=then_g, else_branch=else_g),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [vi("iter", [], T.INT64), vi("cond_in", [], T.BOOL), vi("v_in", ["N", 3])],
        [vi("cond_out", [], T.BOOL), vi("v_out", ["N", 3]), vi("v", ["N", 3])],
        [helper.make_tensor("zero", T.INT64, [], [0]), helper.make_tensor("one", T.FLOAT, [], [1.0])])
    graph = helper.make_graph([helper.make_node("Loop", ["trip", "cond", "x"], ["y", "scans"], body=body)], "g",
                              [vi("x", ["N", 3])], [vi("y", ["N", 3]), vi("scans", ["T", "N", 3])],
                              [helper.make_tensor("trip", T.INT64, [], [3]), helper.make_tensor("cond", T.BOOL, [], [True])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    return model


def _run(proto, x):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})


def test_an_identity_forwarding_an_enclosing_graphs_output_is_kept():
    model = _loop_with_forwarding_branch()
    out = irbridge.normalize(irbridge.load(model))  # onnx_ir's own pass raised ValueError here
    proto = ir.to_proto(out)
    proto.ir_version = 9
    for batch in (2, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3)).astype(np.float32)
        for got, want in zip(_run(proto, x), _run(model, x)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_a_plain_identity_goes():
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])], "g",
        [helper.make_tensor_value_info("x", T.FLOAT, ["N", 3])], [helper.make_tensor_value_info("y", T.FLOAT, ["N", 3])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    out = irbridge.normalize(irbridge.load(model))
    assert [n.op_type for n in out.graph] == ["Relu"]
