"""unbatch-transpose: a transpose of the last two axes done on a flattened batch, done in place."""

from __future__ import annotations

import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import rewrite_each
from ._shape_read import allowzero, is_dim, target_entries
from ._weights import single_reader


@register("unbatch-transpose")
class UnbatchTranspose(ir.passes.InPlacePass):
    """Rewrite a last-two-axes transpose done on a flattened batch into one Transpose.

    PyTorch's dynamo exporter writes `k.transpose(-2, -1)` of attention's keys [B, H, S, D]
    by merging the leading axes, transposing a 3-D tensor and splitting them again. The
    Reshapes hide that this is a transpose: a Keras export would hold the keys in a transposed
    view, and then need a Permute to read them in ONNX order for the first Reshape. As one
    Transpose it composes with the head split's Transpose and attention's MatMul reads it as a
    view (an einsum subscript):

        before:  k [B,H,S,D] -> Reshape([-1, S, D]) -> Transpose(0,2,1) -> Reshape([B, H, D, S])
        after:   k [B,H,S,D] -> Transpose(0,1,3,2) -> [B, H, D, S]

    The first Reshape must keep k's last two axes (read from k's shape, or equal static sizes)
    and merge all others (-1 or the static product); the second must restore k's leading axes
    followed by k's last axis and then its second-to-last. Others are left alone.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(model, rewrite_each(model, "Transpose", _rewrite))


def _rewrite(graph: ir.Graph, t: ir.Node) -> bool:
    merge, split = t.inputs[0].producer(), single_reader(t.outputs[0])
    if list(t.attributes.get_ints("perm", [])) != [0, 2, 1] or merge is None or split is None \
            or merge.op_type != "Reshape" or split.op_type != "Reshape" or merge.domain or split.domain \
            or split.inputs[0] is not t.outputs[0] or single_reader(merge.outputs[0]) is not t:
        return False
    k = merge.inputs[0]
    if k.shape is None or len(k.shape) < 4:
        return False
    rank = len(k.shape)
    first, second = target_entries(merge.inputs[1]), target_entries(split.inputs[1])
    if first is None or second is None or len(first) != 3 or len(second) != rank:
        return False
    lead = k.shape[:-2]
    merged = first[0] == -1 or (all(isinstance(d, int) for d in lead) and first[0] == _prod(lead))
    if not merged or not is_dim(first[1], k, rank - 2) or not is_dim(first[2], k, rank - 1):
        return False
    if not all(is_dim(second[i], k, i) for i in range(rank - 2)) or \
            not is_dim(second[-2], k, rank - 1) or not is_dim(second[-1], k, rank - 2):
        return False
    if allowzero(merge) and 0 in first or allowzero(split) and 0 in second:
        return False
    perm = [*range(rank - 2), rank - 1, rank - 2]
    swap = ir.node("Transpose", [k], {"perm": perm}, name=t.name)
    copy_provenance(t, swap)
    out = split.outputs[0]
    ir.convenience.replace_nodes_and_values(graph, split, [merge, t, split], [swap], [out], [swap.outputs[0]])
    return True


def _prod(dims) -> int:
    p = 1
    for d in dims:
        p *= d
    return p
