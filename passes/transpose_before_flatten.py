"""transpose-before-flatten: flatten an image's spatial axes after moving its channels last."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import rewrite_each
from ._shape_read import allowzero, is_dim, keeps_batch, target_entries
from ._weights import add_initializer, single_reader


@register("transpose-before-flatten")
class TransposeBeforeFlatten(ir.passes.InPlacePass):
    """Rewrite flatten-then-transpose of an image into transpose-then-flatten (a ViT's patches).

    A patch embedding flattens the conv output's spatial axes and then moves the channels last
    (PyTorch's `x.flatten(2).transpose(1, 2)`). The same numbers come from moving the channels
    last first and then flattening; a channels-last target (Keras, TF) holds the conv output
    that way already, so its export needs no Permute, and the patch sequence [N, H'W', C] comes
    straight from the NHWC conv output:

        before:  conv [N,C,H,W] -> Reshape([N, C, -1]) -> Transpose(0,2,1) -> [N, HW, C]
        after:   conv [N,C,H,W] -> Transpose(0,2,3,1) -> Reshape([0, -1, C]) -> [N, HW, C]

    The Reshape's first two target entries must provably be the input's N and C (read from
    its shape, 0, or equal static sizes), its last must merge all the rest (-1 or the static
    product), C must be static; any rank >= 3 (NCL, NCDHW too). Others are left alone.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(model, rewrite_each(model, "Transpose", _rewrite))


def _rewrite(graph: ir.Graph, t: ir.Node) -> bool:
    reshape = t.inputs[0].producer()
    if list(t.attributes.get_ints("perm", [])) != [0, 2, 1] or reshape is None or reshape.op_type != "Reshape" \
            or reshape.domain or single_reader(reshape.outputs[0]) is not t or reshape.outputs[0].is_graph_output():
        return False
    x = reshape.inputs[0]
    if x.shape is None or len(x.shape) < 3 or not isinstance(x.shape[1], int):
        return False
    entries = target_entries(reshape.inputs[1])
    zero_is_zero = allowzero(reshape)
    if entries is None or len(entries) != 3 or not keeps_batch(entries, x, zero_is_zero) \
            or not is_dim(entries[1], x, 1, position=1, allowzero=zero_is_zero):
        return False
    rest = x.shape[2:]
    last = entries[2]
    if last != -1 and not (len(rest) == 1 and is_dim(last, x, 2)) and \
            not (all(isinstance(d, int) for d in rest) and last == int(np.prod(rest))):
        return False
    rank, channels = len(x.shape), x.shape[1]
    to_last = ir.node("Transpose", [x], {"perm": [0, *range(2, rank), 1]}, name=f"{t.name}_channels_last")
    copy_provenance(t, to_last)
    to_last.outputs[0].shape = ir.Shape([x.shape[p] for p in [0, *range(2, rank), 1]])
    to_last.outputs[0].type = x.type
    target = add_initializer(graph, f"{reshape.name}_channels_last_shape", np.array([0, -1, channels], np.int64))
    flat = ir.node("Reshape", [to_last.outputs[0], target], name=reshape.name)
    copy_provenance(reshape, flat)
    out = t.outputs[0]
    ir.convenience.replace_nodes_and_values(graph, t, [reshape, t], [to_last, flat], [out], [flat.outputs[0]])
    return True
