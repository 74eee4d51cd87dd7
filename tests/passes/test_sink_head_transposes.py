"""sink-head-transposes: LLaMA-style attention (rotary embedding of q and k, repeat_kv for grouped
queries) built with onnx.helper; after the pass the head-split Transposes stand only before
the attention MatMuls, and onnxruntime gives the same numbers at two batch sizes and two
sequence lengths. Image-layout Transposes are not moved."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import assert_close, make_model, ort_run, seeded

F = TensorProto.FLOAT
HEADS, KV_HEADS, D = 4, 2, 8


def _const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _rotate(nodes, x, out):
    """out = x * cos4 + rotate_half(x) * sin4 (x is [B, H, S, D])."""
    nodes += [helper.make_node("Mul", [x, "cos4"], [f"{x}_cos"]),
              helper.make_node("Slice", [x, "zero", "half", "three"], [f"{x}_lo"]),
              helper.make_node("Slice", [x, "half", "end", "three"], [f"{x}_hi"]),
              helper.make_node("Neg", [f"{x}_hi"], [f"{x}_neg"]),
              helper.make_node("Concat", [f"{x}_neg", f"{x}_lo"], [f"{x}_rot"], axis=-1),
              helper.make_node("Mul", [f"{x}_rot", "sin4"], [f"{x}_sin"]),
              helper.make_node("Add", [f"{x}_cos", f"{x}_sin"], [out])]


def _repeat_kv(nodes, x, out):
    """[B, 2, S, D] -> Unsqueeze(2) -> Expand([B, 2, 2, S, D]) -> Reshape([B, 4, S, D])."""
    nodes += [helper.make_node("Unsqueeze", [x, "two_axis"], [f"{x}_u"]),
              helper.make_node("Expand", [f"{x}_u", "expand_shape"], [f"{x}_e"]),
              helper.make_node("Reshape", [f"{x}_e", "merge_shape"], [out], allowzero=1)]


def llama_attention():
    nodes = [helper.make_node("Shape", ["q"], ["b"], start=0, end=1),
             helper.make_node("Shape", ["q"], ["s"], start=1, end=2),
             helper.make_node("Concat", ["b", "kv", "rep", "s", "d"], ["expand_shape"], axis=0),
             helper.make_node("Concat", ["b", "heads", "s", "d"], ["merge_shape"], axis=0),
             helper.make_node("Unsqueeze", ["cos", "one_axis"], ["cos4"]),
             helper.make_node("Unsqueeze", ["sin", "one_axis"], ["sin4"])]
    for name in ("q", "k", "v"):
        nodes.append(helper.make_node("Transpose", [name], [f"{name}t"], perm=[0, 2, 1, 3], name=f"{name}_heads"))
    _rotate(nodes, "qt", "qr")
    _rotate(nodes, "kt", "kr")
    _repeat_kv(nodes, "kr", "k4")
    _repeat_kv(nodes, "vt", "v4")
    nodes += [helper.make_node("Transpose", ["k4"], ["k4t"], perm=[0, 1, 3, 2]),
              helper.make_node("MatMul", ["qr", "k4t"], ["scores"]),
              helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
              helper.make_node("MatMul", ["probs", "v4"], ["y"])]
    inits = [_const("zero", [0]), _const("half", [D // 2]), _const("end", [D]), _const("three", [3]),
             _const("one_axis", [1]), _const("two_axis", [2]), _const("kv", [KV_HEADS]),
             _const("rep", [HEADS // KV_HEADS]), _const("heads", [HEADS]), _const("d", [D])]
    inputs = [helper.make_tensor_value_info("q", F, ["batch", "sequence", HEADS, D]),
              helper.make_tensor_value_info("k", F, ["batch", "sequence", KV_HEADS, D]),
              helper.make_tensor_value_info("v", F, ["batch", "sequence", KV_HEADS, D]),
              helper.make_tensor_value_info("cos", F, [1, "sequence", D]),
              helper.make_tensor_value_info("sin", F, [1, "sequence", D])]
    proto = make_model(nodes, inputs, [helper.make_tensor_value_info("y", F, None)], inits)
    return ir.serde.deserialize_model(proto)


def _feeds(batch, seq):
    return {"q": seeded((batch, seq, HEADS, D), seed=1), "k": seeded((batch, seq, KV_HEADS, D), seed=2),
            "v": seeded((batch, seq, KV_HEADS, D), seed=3), "cos": seeded((1, seq, D), seed=4),
            "sin": seeded((1, seq, D), seed=5)}


def test_head_transposes_move_down_to_the_attention_matmuls():
    model = llama_attention()
    before = ir.to_proto(model)
    passes.run(model, ["cancel-transposes", "sink-head-transposes", "remove-unused"])
    transposes = [n for n in model.graph if n.op_type == "Transpose"]
    assert transposes
    for t in transposes:  # every one read by a MatMul (or composed into the one before it)
        assert {r.op_type for r, _ in t.outputs[0].uses()} <= {"MatMul"}, (t.name, t.outputs[0].uses())
    # rotary and repeat_kv now run in [B, S, H, D] order: no Transpose feeds them
    for n in model.graph:
        if n.op_type in ("Mul", "Slice", "Neg", "Concat", "Add", "Unsqueeze", "Expand", "Reshape"):
            assert all(v is None or v.producer() is None or v.producer().op_type != "Transpose"
                       for v in n.inputs), n.name
    for batch, seq in ((2, 5), (3, 7)):
        feeds = _feeds(batch, seq)
        assert_close(ort_run(ir.to_proto(model), feeds)[0], ort_run(before, feeds)[0])


def test_in_the_default_pipeline_too():
    model = llama_attention()
    before = ir.to_proto(model)
    passes.run(model)
    assert sum(n.op_type == "Transpose" for n in model.graph) == 3  # q, k (composed with k^T), v
    feeds = _feeds(3, 6)
    assert_close(ort_run(ir.to_proto(model), feeds)[0], ort_run(before, feeds)[0])


def test_image_layout_transposes_are_not_moved():
    """A Transpose that moves the last axis (NCHW <-> NHWC) is none of this pass's business."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Slice", ["t", "zero", "two", "three"], ["s"]),
             helper.make_node("Slice", ["t", "two", "four", "three"], ["s2"]),
             helper.make_node("Add", ["s", "s2"], ["y"])]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 4, 3, 5])],
                       [helper.make_tensor_value_info("y", F, None)],
                       [_const("zero", [0]), _const("two", [2]), _const("four", [4]), _const("three", [3])])
    model = ir.serde.deserialize_model(proto)
    passes.run(model, ["sink-head-transposes"])
    assert [n.op_type for n in model.graph] == ["Transpose", "Slice", "Slice", "Add"]
