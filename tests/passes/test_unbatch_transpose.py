"""unbatch-transpose: the dynamo export's k.transpose(-2, -1) over a flattened batch becomes one
Transpose (structure checked, onnxruntime before and after at two batch sizes and two sequence
lengths); Reshape pairs that are not that transpose are left alone."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import make_model, ort_run, seeded

F = TensorProto.FLOAT


def _const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _dynamo_key_transpose(swap=True):
    """k[B,4,S,8] -> Reshape([-1, S, 8]) -> Transpose(0,2,1) -> Reshape([B, 4, 8, S]), the
    targets computed from Shape(k) the way torch's dynamo exporter writes them (with `swap`
    False, the second target puts S before 8: a different reshape, not a transpose)."""
    last, before_last = ("s_last", "s_prev") if swap else ("s_prev", "s_last")
    nodes = [
        helper.make_node("Shape", ["k"], ["s"], start=0),
        helper.make_node("Slice", ["s", "m1", "big"], ["s_last"]),
        helper.make_node("Slice", ["s", "m2", "m1"], ["s_prev"]),
        helper.make_node("Slice", ["s", "small", "m2"], ["s_lead"]),
        helper.make_node("Concat", ["m1", "s_prev", "s_last"], ["merge_target"], axis=0),
        helper.make_node("Reshape", ["k", "merge_target"], ["merged"], name="merge"),
        helper.make_node("Transpose", ["merged"], ["merged_t"], perm=[0, 2, 1], name="swap"),
        helper.make_node("Concat", ["s_lead", last, before_last], ["split_target"], axis=0),
        helper.make_node("Reshape", ["merged_t", "split_target"], ["y"], name="split"),
    ]
    inits = [_const("m1", [-1]), _const("m2", [-2]), _const("big", [2**63 - 1]), _const("small", [-2**63])]
    proto = make_model(nodes, [helper.make_tensor_value_info("k", F, ["batch", 4, "sequence", 8])],
                       [helper.make_tensor_value_info("y", F, None)], inits)
    return ir.serde.deserialize_model(proto)


def test_a_transpose_over_a_flattened_batch_becomes_one_transpose():
    model = _dynamo_key_transpose()
    before = ir.to_proto(model)
    passes.run(model, ["unbatch-transpose", "remove-unused"])
    assert [n.op_type for n in model.graph] == ["Transpose"]
    assert list(model.graph.node(0).attributes.get_ints("perm")) == [0, 1, 3, 2]
    assert model.graph.outputs[0].name == "y"
    for batch, seq in ((2, 5), (3, 7)):
        k = seeded((batch, 4, seq, 8), seed=batch)
        got, ref = ort_run(ir.to_proto(model), {"k": k})[0], ort_run(before, {"k": k})[0]
        assert got.shape == ref.shape == (batch, 4, 8, seq)
        np.testing.assert_array_equal(got, ref)


def test_it_then_composes_with_the_head_split():
    """x[B,S,4,8] -> Transpose(0,2,1,3) -> (the pattern) -> y: one Transpose(0,2,3,1) remains."""
    model = _dynamo_key_transpose()
    head_split = ir.node("Transpose", [model.graph.inputs[0]], {"perm": [0, 2, 1, 3]}, name="heads")
    k = model.graph.inputs[0]
    x = ir.Value(name="x", shape=ir.Shape(["batch", "sequence", 4, 8]), type=k.type)
    for user, i in list(k.uses()):
        user.replace_input_with(i, head_split.outputs[0])
    head_split.replace_input_with(0, x)
    model.graph.inputs[0] = x
    head_split.outputs[0].name = "k"
    model.graph.insert_before(model.graph.node(0), head_split)
    before = ir.to_proto(model)
    passes.run(model)
    assert [(n.op_type, list(n.attributes.get_ints("perm"))) for n in model.graph] == [("Transpose", [0, 2, 3, 1])]
    for batch, seq in ((2, 5), (3, 7)):
        xv = seeded((batch, seq, 4, 8), seed=batch)
        np.testing.assert_array_equal(ort_run(ir.to_proto(model), {"x": xv})[0], ort_run(before, {"x": xv})[0])


def test_a_reshape_pair_that_is_no_transpose_is_left_alone():
    model = _dynamo_key_transpose(swap=False)
    passes.run(model, ["unbatch-transpose"])
    assert [n.op_type for n in model.graph if n.op_type in ("Reshape", "Transpose")] == \
        ["Reshape", "Transpose", "Reshape"]


@pytest.mark.parametrize("merge_target", [[-1, 0, 8], [4, 16, 8]])
def test_a_merge_that_does_not_keep_the_last_two_axes_is_left_alone(merge_target):
    nodes = [helper.make_node("Reshape", ["k", "t1"], ["m"]),
             helper.make_node("Transpose", ["m"], ["mt"], perm=[0, 2, 1]),
             helper.make_node("Reshape", ["mt", "t2"], ["y"])]
    proto = make_model(nodes, [helper.make_tensor_value_info("k", F, [2, 4, 8, 8])],
                       [helper.make_tensor_value_info("y", F, None)],
                       [_const("t1", merge_target), _const("t2", [2, 4, 8, 8])])
    model = ir.serde.deserialize_model(proto)
    passes.run(model, ["unbatch-transpose"])
    assert [n.op_type for n in model.graph] == ["Reshape", "Transpose", "Reshape"]
