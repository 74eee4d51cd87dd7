"""drop-noop-reshape: remove a Reshape that provably gives its input's own shape."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import common

from . import register
from ._shape_read import allowzero, is_dim, target_entries


@register("drop-noop-reshape")
class DropNoopReshape(ir.passes.InPlacePass):
    """Remove Reshapes whose target is provably the input's shape (they move no data).

    TorchScript's export of Hugging Face attention (Whisper's, for one) reshapes the attention
    output to [B, -1, S, D] with the sizes read from other tensors, right before the head-merge
    Transpose. Such a Reshape hides the Transpose from the attention MatMul, which a
    channels-last target (Keras) could otherwise emit in the merged order; with it, the
    Transpose costs a Permute:

        before:  a [B,4,50,8] -> Reshape([Shape(a)[0], -1, Shape(h)[1] = 50, 8]) -> Transpose(0,2,1,3)
        after:   a [B,4,50,8] -> Transpose(0,2,1,3)

    Every target entry but at most one -1 must provably be the input's size on that axis (read
    from the input's shape, a 0 copying it, an equal static size, or the same named symbolic
    dim); then the -1 is the remaining axis' size too. A Reshape that is a graph output stays,
    and so do the two around an InstanceNormalization: with as many groups as channels they are
    no-ops too, but they mark a GroupNormalization, which the exporters recognise by them.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        common.ShapeInferencePass()(model)
        modified = False
        for node in list(model.graph):
            if node.op_type != "Reshape" or node.domain or node.outputs[0].is_graph_output():
                continue
            x = node.inputs[0]
            if _around_instance_norm(node):
                continue
            entries = target_entries(node.inputs[1], symbolic=True) if len(node.inputs) > 1 else None
            if x is None or x.shape is None or entries is None or len(entries) != len(x.shape):
                continue
            proven = [is_dim(e, x, i, position=i, allowzero=allowzero(node)) for i, e in enumerate(entries)]
            unproven = [e for e, ok in zip(entries, proven) if not ok]
            if unproven not in ([], [-1]):
                continue
            node.outputs[0].replace_all_uses_with(x)
            model.graph.remove(node, safe=True)
            modified = True
        return ir.passes.PassResult(model, modified)


def _around_instance_norm(node: ir.Node) -> bool:
    """PyTorch's GroupNorm: Reshape -> InstanceNormalization -> Reshape (-> Mul, Add)."""
    producer = node.inputs[0].producer() if node.inputs[0] is not None else None
    readers = [n for n, _ in node.outputs[0].uses()]
    return (producer is not None and producer.op_type == "InstanceNormalization") or \
        any(n.op_type == "InstanceNormalization" for n in readers)
