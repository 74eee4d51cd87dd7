"""transpose-before-flatten: a ViT patch embedding's flatten-then-transpose becomes
transpose-then-flatten (structure checked, onnxruntime before and after at batch 2 and 3 and
two image sizes); Reshapes that are not a flatten of the spatial axes are left alone."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import make_model, ort_run, seeded

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _patch_embedding(shape_nodes, extra_inits=(), channels=8, perm=(0, 2, 1)):
    """x[N,3,H,W] -> Conv(k=2, s=2) -> Reshape(target from `shape_nodes`) -> Transpose(perm) -> y."""
    w = numpy_helper.from_array(seeded((channels, 3, 2, 2), seed=1), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[2, 2], strides=[2, 2], name="conv"),
             *shape_nodes,
             helper.make_node("Reshape", ["c", "target"], ["r"], name="flatten"),
             helper.make_node("Transpose", ["r"], ["y"], perm=list(perm), name="to_sequence")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 3, "h", "w"])],
                       [helper.make_tensor_value_info("y", F, None)], [w, *extra_inits])
    return ir.serde.deserialize_model(proto)


def _torch_style():
    """PyTorch's flatten(2): the target is Concat(Shape(c)[0:2], [-1])."""
    return [helper.make_node("Shape", ["c"], ["s"]),
            helper.make_node("Slice", ["s", "zero", "two", "zero"], ["s01"]),
            helper.make_node("Concat", ["s01", "minus_one"], ["target"], axis=0)], \
        [_const("zero", [0]), _const("two", [2]), _const("minus_one", [-1])]


def _check_same_numbers(model, before):
    for batch, (h, w) in ((2, (8, 6)), (3, (4, 10))):
        x = seeded((batch, 3, h, w), seed=batch)
        got, ref = ort_run(ir.to_proto(model), {"x": x})[0], ort_run(before, {"x": x})[0]
        assert got.shape == ref.shape == (batch, h * w // 4, 8)
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("style", ["shape_arithmetic", "zeros"])
def test_flatten_then_transpose_becomes_transpose_then_flatten(style):
    if style == "shape_arithmetic":
        model = _patch_embedding(*_torch_style())
    else:
        model = _patch_embedding([], [_const("target", [0, 0, -1])])
    before = ir.to_proto(model)
    passes.run(model, ["transpose-before-flatten", "remove-unused"])
    assert [n.op_type for n in model.graph] == ["Conv", "Transpose", "Reshape"]
    t, r = model.graph.node(1), model.graph.node(2)
    assert list(t.attributes.get_ints("perm")) == [0, 2, 3, 1]
    assert r.inputs[1].const_value.numpy().tolist() == [0, -1, 8]
    assert model.graph.outputs[0].name == "y"
    _check_same_numbers(model, before)


def test_the_vit_patches_leave_the_nhwc_conv_with_no_transpose_left():
    """After the default pipeline and the NHWC layout, the Transpose is a free view: the
    flatten reads the conv output in the order a channels-last target holds it."""
    from irbridge.passes.assign_nhwc import AssignNHWC, physical_perm

    model = _patch_embedding(*_torch_style())
    before = ir.to_proto(model)
    passes.run(model)
    passes.run(model, [AssignNHWC()])
    t = next(n for n in model.graph if n.op_type == "Transpose")
    assert physical_perm(t.inputs[0]) == (0, 2, 3, 1) and physical_perm(t.outputs[0]) is None
    _check_same_numbers(model, before)


@pytest.mark.parametrize("target, perm", [
    ([0, -1, 4], (0, 2, 1)),  # the channels are split: not a flatten of the spatial axes
    ([0, 0, -1], (1, 0, 2)),  # another transpose
    ([-1, 8, 4], (0, 2, 1)),  # the batch is not provably kept
])
def test_other_reshapes_are_left_alone(target, perm):
    model = _patch_embedding([], [_const("target", target)], perm=perm)
    passes.run(model, ["transpose-before-flatten"])
    assert [n.op_type for n in model.graph] == ["Conv", "Reshape", "Transpose"]


def _segformer_reduction(conv_batch: str):
    """SegFormer's sequence reduction: s [batch, 64, 16] -> Reshape([Shape(s)[0], 8, 8, 16])
    -> Transpose(0,3,1,2) -> Conv(k=2, s=2) -> c [<conv_batch>, 16, 4, 4] as recorded
    -> Reshape([Shape(s)[0], Shape(s)[2], -1]) -> Transpose(0,2,1) -> y. The batch entry is
    read from s, not from c, whose recorded batch has another name."""
    w = numpy_helper.from_array(seeded((16, 16, 2, 2), seed=1), "w")
    nodes = [helper.make_node("Shape", ["s"], ["sb"], start=0, end=1),
             helper.make_node("Shape", ["s"], ["sc"], start=2, end=3),
             helper.make_node("Concat", ["sb", "eight_eight_16"], ["grid"], axis=0),
             helper.make_node("Reshape", ["s", "grid"], ["g"]),
             helper.make_node("Transpose", ["g"], ["img"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["img", "w"], ["c"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Concat", ["sb", "sc", "minus_one"], ["target"], axis=0),
             helper.make_node("Reshape", ["c", "target"], ["r"], name="flatten"),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1], name="to_sequence")]
    proto = make_model(nodes, [helper.make_tensor_value_info("s", F, ["batch", 64, 16])],
                       [helper.make_tensor_value_info("y", F, None)],
                       [w, _const("eight_eight_16", [8, 8, 16]), _const("minus_one", [-1])])
    proto.graph.value_info.append(helper.make_tensor_value_info("c", F, [conv_batch, 16, 4, 4]))
    return ir.serde.deserialize_model(proto)


def test_a_batch_read_from_the_tensor_the_image_came_from_is_proven():
    """The conv's batch is followed back (Conv keeps axis 0, Transpose, Reshape entry Shape(s)[0])
    to s's: the flatten is rewritten although the recorded names differ."""
    model = _segformer_reduction("unk__7")
    before = ir.to_proto(model)
    passes.run(model, ["transpose-before-flatten"])
    assert [n.op_type for n in model.graph][-2:] == ["Transpose", "Reshape"]
    for batch in (2, 3):
        feeds = {"s": seeded((batch, 64, 16), seed=batch)}
        np.testing.assert_allclose(ort_run(ir.to_proto(model), feeds)[0], ort_run(before, feeds)[0], rtol=1e-6)
