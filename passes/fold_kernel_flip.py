"""fold-kernel-flip: fold a spatial flip (Slice with step -1) of a kernel into the initializer."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import LAYOUT

from . import register
from ._weights import FLIP, const, feeds_weight, replace_with_constant


@register("fold-kernel-flip")
class FoldKernelFlip(ir.passes.InPlacePass):
    """Fold a full reversal (Slice, step -1) of a weight's axes into the initializer.

    Theano convolves (kernel rotated 180°); ONNX, Caffe, TF and PyTorch correlate. The Theano
    importer says so literally with a flip, and this pass bakes it into the weights:

        before:  W [O,I,kh,kw] (irbridge.layout=OIHW+flip) -> Slice(axes=[2,3], steps=[-1,-1]) -> Conv
        after:   W[:, :, ::-1, ::-1] (no mark)                                                   -> Conv

    Only Slices that reverse whole axes of a constant that ends in a weight input are folded.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in list(model.graph):
            if node.op_type != "Slice" or node.domain != "":
                continue
            array = const(node.inputs[0])
            axes = _full_reversal(node, array)
            if axes is None or not feeds_weight(node.outputs[0]):
                continue
            mark = node.inputs[0].metadata_props.get(LAYOUT)
            if mark and mark.endswith(FLIP):
                mark = mark[: -len(FLIP)]
            replace_with_constant(model.graph, node, np.flip(array, axes), mark)
            modified = True
        return ir.passes.PassResult(model, modified)


def _full_reversal(node: ir.Node, array: np.ndarray | None) -> tuple[int, ...] | None:
    """The axes a Slice reverses completely, or None if it does anything else."""
    if array is None:
        return None
    parts = [const(node.inputs[i]) if len(node.inputs) > i else None for i in range(1, 5)]
    starts, ends, axes, steps = parts
    if starts is None or ends is None:
        return None
    axes = list(range(len(starts))) if axes is None else [int(a) % array.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    flipped = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        dim = array.shape[axis]
        start, end = int(start), int(end)
        starts_at_last = (start if start >= 0 else start + dim) >= dim - 1
        ends_past_first = end < -dim  # a negative step's end is exclusive: it must pass index 0
        if step != -1 or not starts_at_last or not ends_past_first:
            return None
        flipped.append(axis)
    return tuple(flipped)
