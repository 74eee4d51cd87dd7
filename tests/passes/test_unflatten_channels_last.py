"""unflatten-channels-last: SegFormer's sequence-to-image transpose-then-reshape becomes
reshape-then-transpose (structure checked, onnxruntime before and after at batch 2 and 3), with
a constant target and with one computed at run time; other Reshapes are left alone."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import passes
from tests.conftest import make_model, ort_run, seeded

F = TensorProto.FLOAT
C = 8


def _const(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _sequence_to_image(target_nodes, inits, perm=(0, 2, 1)):
    """x[N,24,C] -> Transpose(perm) -> Reshape(target) -> Conv(3x3) -> y."""
    w = numpy_helper.from_array(seeded((4, C, 3, 3), seed=1), "w")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=list(perm), name="to_channels"),
             *target_nodes,
             helper.make_node("Reshape", ["t", "target"], ["image"], name="to_image"),
             helper.make_node("Conv", ["image", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv")]
    proto = make_model(nodes, [helper.make_tensor_value_info("x", F, ["batch", 24, C])],
                       [helper.make_tensor_value_info("y", F, None)], [w, *inits])
    return ir.serde.deserialize_model(proto)


def _runtime_target():
    """PyTorch's x.transpose(1, 2).reshape(batch, C, 4, 6), the batch read from x's shape."""
    return [helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
            helper.make_node("Concat", ["n1", "rest"], ["target"], axis=0)], \
        [numpy_helper.from_array(np.array(0, np.int64), "zero"), _const("zero1", [0]), _const("rest", [C, 4, 6])]


@pytest.mark.parametrize("style", ["constant", "run_time"])
def test_transpose_then_reshape_to_an_image_becomes_reshape_then_transpose(style):
    model = _sequence_to_image(*_runtime_target()) if style == "run_time" else \
        _sequence_to_image([], [_const("target", [-1, C, 4, 6])])
    before = ir.to_proto(model)
    passes.run(model, ["unflatten-channels-last", "remove-unused"])
    ops = [n.op_type for n in model.graph if n.op_type in ("Reshape", "Transpose", "Conv")]
    assert ops == ["Reshape", "Transpose", "Conv"]
    reshape, t = (n for n in model.graph if n.op_type in ("Reshape", "Transpose"))
    assert list(t.attributes.get_ints("perm")) == [0, 3, 1, 2]
    assert reshape.inputs[0].name == "x" and reshape.outputs[0].shape[1:] == ir.Shape([4, 6, C])
    for batch in (2, 3):
        x = seeded((batch, 24, C), seed=batch)
        got, ref = ort_run(ir.to_proto(model), {"x": x})[0], ort_run(before, {"x": x})[0]
        assert got.shape == ref.shape == (batch, 4, 4, 6)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_the_image_then_reaches_the_conv_channels_last_with_no_transpose_left():
    from irbridge.passes.assign_nhwc import AssignNHWC, physical_perm

    model = _sequence_to_image([], [_const("target", [-1, C, 4, 6])])
    passes.run(model)
    passes.run(model, [AssignNHWC()])
    t = next(n for n in model.graph if n.op_type == "Transpose")
    assert physical_perm(t.inputs[0]) is None and physical_perm(t.outputs[0]) == (0, 2, 3, 1)


@pytest.mark.parametrize("target, perm", [
    ([-1, 4, 6, C], (0, 2, 1)),  # the channels are not kept as axis 1
    ([-1, 0, 4, 6], (0, 2, 1)),  # 0 would copy another axis once reordered
    ([-1, C, 4, 6], (1, 0, 2)),  # another transpose
])
def test_other_reshapes_are_left_alone(target, perm):
    model = _sequence_to_image([], [_const("target", target)], perm=perm)
    passes.run(model, ["unflatten-channels-last"])
    assert [n.op_type for n in model.graph] == ["Transpose", "Reshape", "Conv"]
