"""drop-noop-reshape: Whisper's attention-output Reshape (sizes read from other tensors, one -1)
is removed when every other entry provably is the input's size (structure checked, onnxruntime
before and after at batch 2 and 3); Reshapes that may change the shape stay."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import make_model, ort_run, seeded

F = TensorProto.FLOAT


def _const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _attention_output(entry2_from: str, minus_one_at: int = 1):
    """a[B,4,6,8] (MatMul of p[B,4,6,6] and v[B,4,6,8]) -> Reshape([Shape(a)[0], -1, Shape(<entry2_from>)[1], 8])
    -> Transpose(0,2,1,3) -> y."""
    middle = ["minus_one", "s1"] if minus_one_at == 1 else ["s1", "minus_one"]
    nodes = [helper.make_node("MatMul", ["p", "v"], ["a"]),
             helper.make_node("Shape", ["a"], ["sa"]),
             helper.make_node("Gather", ["sa", "i0"], ["b"], axis=0),
             helper.make_node("Shape", [entry2_from], ["sh"]),
             helper.make_node("Gather", ["sh", "i1"], ["s1"], axis=0),
             helper.make_node("Concat", ["b", *middle, "eight"], ["target"], axis=0),
             helper.make_node("Reshape", ["a", "target"], ["r"], name="noop"),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1, 3])]
    inputs = [helper.make_tensor_value_info("p", F, ["batch", 4, 6, 6]),
              helper.make_tensor_value_info("v", F, ["batch", 4, 6, 8]),
              helper.make_tensor_value_info("h", F, ["batch", 6, 32]),
              helper.make_tensor_value_info("g", F, ["batch", "free", 32])]
    proto = make_model(nodes, inputs, [helper.make_tensor_value_info("y", F, None)],
                       [_const("i0", [0]), _const("i1", [1]), _const("minus_one", [-1]), _const("eight", [8])])
    return ir.serde.deserialize_model(proto)


def _feeds(batch):
    return {"p": seeded((batch, 4, 6, 6), seed=batch), "v": seeded((batch, 4, 6, 8), seed=batch + 10),
            "h": seeded((batch, 6, 32), seed=3), "g": seeded((batch, 6, 32), seed=4)}


def test_a_reshape_to_the_inputs_own_shape_is_removed():
    model = _attention_output("h")
    before = ir.to_proto(model)
    passes.run(model, ["drop-noop-reshape", "remove-unused"])
    assert [n.op_type for n in model.graph] == ["MatMul", "Transpose"]
    for batch in (2, 3):
        feeds = _feeds(batch)
        np.testing.assert_array_equal(ort_run(ir.to_proto(model), feeds)[0], ort_run(before, feeds)[0])


@pytest.mark.parametrize("entry2_from, minus_one_at", [
    ("g", 1),  # a size read from a tensor whose axis 1 is free: maybe not 6
    ("h", 2),  # [B, 6, -1, 8] from [B, 4, 6, 8]: a real reshape
])
def test_a_reshape_that_may_change_the_shape_stays(entry2_from, minus_one_at):
    model = _attention_output(entry2_from, minus_one_at)
    passes.run(model, ["drop-noop-reshape"])
    assert "Reshape" in [n.op_type for n in model.graph]


def test_the_reshapes_that_mark_a_group_norm_stay():
    """nn.GroupNorm(4, 4): Reshape([0, 4, -1]) -> InstanceNormalization -> Reshape(Shape(x)); with
    one channel per group both are no-ops, but the exporters recognise the GroupNorm by them."""
    nodes = [helper.make_node("Reshape", ["x", "groups"], ["g"]),
             helper.make_node("InstanceNormalization", ["g", "ones", "zeros"], ["n"]),
             helper.make_node("Shape", ["x"], ["sx"]),
             helper.make_node("Reshape", ["n", "sx"], ["y"])]
    inits = [_const("groups", [0, 4, -1]), numpy_helper.from_array(np.ones(4, np.float32), "ones"),
             numpy_helper.from_array(np.zeros(4, np.float32), "zeros")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 4, "time"])],
                       [helper.make_tensor_value_info("y", F, None)], inits)
    model = ir.serde.deserialize_model(proto)
    passes.run(model, ["drop-noop-reshape"])
    assert [n.op_type for n in model.graph] == ["Reshape", "InstanceNormalization", "Shape", "Reshape"]


def _dynamo_head_merge(name: str):
    """The dynamo export of wav2vec2's attention: a [B, 4, <name>, 8], where the exporter names
    the frame count by its expression in the samples, is reshaped (allowzero) to
    [Shape(s)[0], 4, Reshape(Shape(s)[1] // 20 + -1, [-1]), 8] -> Transpose(0,2,1,3) -> y."""
    nodes = [helper.make_node("Shape", ["s"], ["batch"], start=0, end=1),
             helper.make_node("Shape", ["s"], ["samples"], start=1, end=2),
             helper.make_node("Squeeze", ["samples"], ["n"]),
             helper.make_node("Div", ["n", "twenty"], ["q"]),
             helper.make_node("Add", ["minus_one_scalar", "q"], ["frames"]),
             helper.make_node("Reshape", ["frames", "minus_one"], ["frames_1d"]),
             helper.make_node("Concat", ["batch", "four", "frames_1d", "eight"], ["target"], axis=0),
             helper.make_node("Reshape", ["a", "target"], ["r"], name="view", allowzero=1),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1, 3])]
    inits = [numpy_helper.from_array(np.array(20, np.int64), "twenty"),
             numpy_helper.from_array(np.array(-1, np.int64), "minus_one_scalar"),
             _const("minus_one", [-1]), _const("four", [4]), _const("eight", [8])]
    inputs = [helper.make_tensor_value_info("s", F, ["batch", "sequence"]),
              helper.make_tensor_value_info("a", F, ["batch", 4, name, 8])]
    proto = make_model(nodes, inputs, [helper.make_tensor_value_info("y", F, None)], inits)
    return ir.serde.deserialize_model(proto)


def test_a_size_computed_as_the_dims_symbolic_expression_is_proven():
    """The entry Shape(s)[1] // 20 + -1 is the dim named ((sequence//20)) - 1 (canonical forms
    compared), so the Reshape goes; onnxruntime before and after at two batches and lengths."""
    model = _dynamo_head_merge("((sequence//20)) - 1")
    before = ir.to_proto(model)
    passes.run(model, ["drop-noop-reshape", "remove-unused"])
    assert [n.op_type for n in model.graph] == ["Transpose"]
    for batch, samples in ((2, 100), (3, 143)):
        feeds = {"s": seeded((batch, samples), seed=batch), "a": seeded((batch, 4, samples // 20 - 1, 8), seed=7)}
        np.testing.assert_array_equal(ort_run(ir.to_proto(model), feeds)[0], ort_run(before, feeds)[0])


@pytest.mark.parametrize("name", ["((sequence//10)) - 1", "sequence - 1", "frames"])
def test_a_size_of_another_expression_is_not_proven(name):
    model = _dynamo_head_merge(name)
    passes.run(model, ["drop-noop-reshape"])
    assert "Reshape" in [n.op_type for n in model.graph]


def _t5_attention(bias_from_input: bool = False):
    """T5's self-attention, its position bias computed from the length (or, with
    `bias_from_input`, given as an input of another length name):

        h [batch, seq, 8] -> Reshape([0, 0, 2, 4]) -> Transpose(0,2,1,3) -> q [B, 2, T, 4]
        Range(0, Shape(h)[1], 1) -> Unsqueeze -> Sub (relative positions [T, T]) -> Abs -> Min(3)
          -> Gather(table [4, 2]) -> Transpose(2,0,1) -> Unsqueeze(0) -> bias [1, 2, T, T]
        Softmax(q @ qT + bias) @ q -> a -> Reshape([Shape(a)[0], -1, Shape(q)[2], Shape(q)[3]])
          -> Transpose(0,2,1,3) -> Reshape([0, 0, 8]) -> y

    The Reshape of a is a no-op only if a's rows are q's: followed back through the MatMul,
    Softmax and the broadcast Add (q's rows, and the bias' rows from the Range over Shape(h)[1]).
    """
    nodes = [helper.make_node("Reshape", ["h", "heads"], ["hs"]),
             helper.make_node("Transpose", ["hs"], ["q"], perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "qt"], ["scores"]),
             helper.make_node("Add", ["scores", "bias"], ["biased"]),
             helper.make_node("Softmax", ["biased"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "q"], ["a"]),
             helper.make_node("Shape", ["a"], ["sa"], start=0, end=1),
             helper.make_node("Shape", ["q"], ["sq"], start=2, end=4),
             helper.make_node("Concat", ["sa", "minus_one", "sq"], ["target"], axis=0),
             helper.make_node("Reshape", ["a", "target"], ["r"], name="noop"),
             helper.make_node("Transpose", ["r"], ["m"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["m", "merged"], ["y"])]
    inits = [_const("heads", [0, 0, 2, 4]), _const("minus_one", [-1]), _const("merged", [0, 0, 8])]
    inputs = [helper.make_tensor_value_info("h", F, ["batch", "seq", 8])]
    if bias_from_input:
        inputs.append(helper.make_tensor_value_info("bias", F, [1, 2, "other", "other"]))
    else:
        nodes += [helper.make_node("Shape", ["h"], ["sh"], start=1, end=2),
                  helper.make_node("Squeeze", ["sh"], ["t"]),
                  helper.make_node("Range", ["zero", "t", "one"], ["pos"]),
                  helper.make_node("Unsqueeze", ["pos", "ax0"], ["row"]),
                  helper.make_node("Unsqueeze", ["pos", "ax1"], ["col"]),
                  helper.make_node("Sub", ["row", "col"], ["rel"]),
                  helper.make_node("Abs", ["rel"], ["dist"]),
                  helper.make_node("Min", ["dist", "three"], ["bucket"]),
                  helper.make_node("Gather", ["table", "bucket"], ["tb"], axis=0),
                  helper.make_node("Transpose", ["tb"], ["bt"], perm=[2, 0, 1]),
                  helper.make_node("Unsqueeze", ["bt", "ax0"], ["bias"])]
        inits += [numpy_helper.from_array(np.array(0, np.int64), "zero"),
                  numpy_helper.from_array(np.array(1, np.int64), "one"),
                  numpy_helper.from_array(np.array(3, np.int64), "three"),
                  _const("ax0", [0]), _const("ax1", [1]),
                  numpy_helper.from_array(seeded((4, 2), seed=9), "table")]
    proto = make_model(nodes, inputs, [helper.make_tensor_value_info("y", F, None)], inits)
    proto = onnx.shape_inference.infer_shapes(proto)  # topological order for onnx_ir
    return ir.serde.deserialize_model(proto)


def test_t5_attention_output_reshape_is_proven_through_the_position_bias():
    model = _t5_attention()
    ir.passes.common.TopologicalSortPass()(model)
    before = ir.to_proto(model)
    passes.run(model, ["drop-noop-reshape", "remove-unused"])
    assert "noop" not in [n.name for n in model.graph]
    for batch, seq in ((2, 5), (3, 9)):
        feeds = {"h": seeded((batch, seq, 8), seed=batch + seq)}
        np.testing.assert_array_equal(ort_run(ir.to_proto(model), feeds)[0], ort_run(before, feeds)[0])


def test_a_bias_of_unproven_length_keeps_the_reshape():
    """[1, 2, other, other] broadcast against q's [B, 2, T, T]: if T were 1, the rows would be
    `other`, not T; the Reshape stays."""
    model = _t5_attention(bias_from_input=True)
    passes.run(model, ["drop-noop-reshape"])
    assert "noop" in [n.name for n in model.graph]
