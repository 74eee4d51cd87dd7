"""unflatten-channels-last: turn a sequence [N, L, C] back into an image by reshaping it first."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import rewrite_each
from ._shape_read import allowzero, is_dim, keeps_batch, target_entries
from ._weights import add_initializer, const, single_reader


@register("unflatten-channels-last")
class UnflattenChannelsLast(ir.passes.InPlacePass):
    """Rewrite transpose-then-reshape of a sequence into an image as reshape-then-transpose.

    Hierarchical vision transformers (SegFormer, PVT, Swin's patch merging) turn their token
    sequence back into an image for a convolution (PyTorch's `x.transpose(1, 2).reshape(N, C,
    H, W)`). Reshaping the sequence into a channels-last image first gives the same numbers; a
    channels-last target (Keras, TF) then holds the image as its convolution wants it, with no
    Permute before or after:

        before:  x [N,L,C] -> Transpose(0,2,1) -> Reshape([N, C, H, W]) -> Conv
        after:   x [N,L,C] -> Reshape([N, H, W, C]) -> Transpose(0,3,1,2) -> Conv

    The Reshape's first two target entries must provably be N and C (C static); the others may
    be constants or computed at run time (then the target is reordered with a Gather), but not
    0. Any image rank >= 3.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(model, rewrite_each(model, "Transpose", _rewrite))


def _rewrite(graph: ir.Graph, t: ir.Node) -> bool:
    reshape, x = single_reader(t.outputs[0]), t.inputs[0]
    if list(t.attributes.get_ints("perm", [])) != [0, 2, 1] or reshape is None or reshape.op_type != "Reshape" \
            or reshape.domain or reshape.inputs[0] is not t.outputs[0] or x.shape is None \
            or not isinstance(x.shape[2], int):
        return False
    entries = target_entries(reshape.inputs[1])
    if entries is None or len(entries) < 3 or any(e == 0 for e in entries[1:]) or allowzero(reshape) and 0 in entries:
        return False
    if not keeps_batch(entries, x, allowzero(reshape)) or not is_dim(entries[1], x, 2):
        return False
    rank = len(entries)
    order = [0, *range(2, rank), 1]  # the target's entries, channels last
    target = const(reshape.inputs[1])
    if target is not None:
        new_target = add_initializer(graph, f"{reshape.name}_channels_last_shape", target.reshape(-1)[order])
        extra = []
    else:
        indices = add_initializer(graph, f"{reshape.name}_channels_last_order", np.array(order, np.int64))
        gather = ir.node("Gather", [reshape.inputs[1], indices], {"axis": 0}, name=f"{reshape.name}_channels_last")
        copy_provenance(reshape, gather)
        new_target, extra = gather.outputs[0], [gather]
    image = ir.node("Reshape", [x, new_target], name=reshape.name)
    copy_provenance(reshape, image)
    to_first = ir.node("Transpose", [image.outputs[0]], {"perm": [0, rank - 1, *range(1, rank - 1)]}, name=t.name)
    copy_provenance(t, to_first)
    out = reshape.outputs[0]
    if out.shape is not None:
        image.outputs[0].shape = ir.Shape([out.shape[p] for p in order])
        image.outputs[0].type = out.type
    ir.convenience.replace_nodes_and_values(graph, reshape, [t, reshape], [*extra, image, to_first], [out],
                                            [to_first.outputs[0]])
    return True
