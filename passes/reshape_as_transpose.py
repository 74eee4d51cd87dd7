"""reshape-as-transpose: a Reshape that only moves size-1 axes is a Transpose; say so."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import common

from irbridge.provenance import copy_provenance

from . import register
from ._weights import const


@register("reshape-as-transpose")
class ReshapeAsTranspose(ir.passes.InPlacePass):
    """Rewrite a Reshape that moves only size-1 axes into the Transpose it is.

    tf2onnx writes the NHWC -> NCHW step of a one-channel image as a Reshape (moving an axis of
    size 1 needs no data movement), which hides the layout from the passes that cancel and
    assign transposes: a Keras export of a (28, 28, 1) model would take (28, 1, 28) images.

        before:  img [batch,28,28,1] -> Reshape(shape=[-1,1,28,28]) -> Conv
        after:   img [batch,28,28,1] -> Transpose(perm=[0,3,1,2])   -> Conv

    The non-1 dims (free dims included) must keep their order; the size-1 dims are matched in
    order. Reshapes whose input shape or target is not known are left alone.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        common.ShapeInferencePass()(model)  # the Reshapes' input shapes (tf2onnx leaves some out)
        modified = False
        for node in list(model.graph):
            if node.op_type != "Reshape" or node.domain != "" or node.outputs[0].is_graph_output():
                continue
            perm = _as_perm(node)
            if perm is None:
                continue
            transpose = ir.node("Transpose", [node.inputs[0]], {"perm": perm}, name=f"{node.name}_as_transpose")
            copy_provenance(node, transpose)
            model.graph.insert_before(node, transpose)
            old, out = node.outputs[0], transpose.outputs[0]
            ir.convenience.replace_all_uses_with(old, out)
            name, out.shape, out.type = old.name, old.shape, old.type
            model.graph.remove(node, safe=True)
            out.name = name
            modified = True
        return ir.passes.PassResult(model, modified)


def _as_perm(node: ir.Node) -> list[int] | None:
    x = node.inputs[0]
    target = const(node.inputs[1])
    allowzero = node.attributes.get("allowzero")
    if len(node.inputs) < 2 or x is None or x.shape is None or target is None \
            or (allowzero is not None and allowzero.value):
        return None
    src = list(x.shape)
    dst = [src[k] if int(d) == 0 and k < len(src) else int(d) for k, d in enumerate(target.reshape(-1))]
    if len(dst) != len(src) or sum(1 for d in dst if d == -1) > 1:
        return None
    if -1 in dst:
        dst[dst.index(-1)] = _inferred(src, dst)
    if any(d is None for d in dst):
        return None
    big_src = [k for k, d in enumerate(src) if d != 1]
    big_dst = [k for k, d in enumerate(dst) if d != 1]
    if [src[k] for k in big_src] != [dst[k] for k in big_dst]:
        return None
    ones_src = iter(k for k, d in enumerate(src) if d == 1)
    big = iter(big_src)
    perm = [next(big) if d != 1 else next(ones_src) for d in dst]
    return None if perm == list(range(len(perm))) else perm


def _inferred(src: list, dst: list):
    """What -1 stands for: the one free dim when the static dims on both sides match, or the
    remaining static size; None when it cannot be told."""
    free = [d for d in src if not isinstance(d, int)]
    known_src = 1
    for d in src:
        if isinstance(d, int):
            known_src *= d
    known_dst = 1
    for d in dst:
        if isinstance(d, int) and d != -1:
            known_dst *= d
        elif not isinstance(d, int):  # a free dim copied by a 0 as well: cannot be told apart
            return None
    if len(free) == 1 and known_src == known_dst:
        return free[0]
    if not free and known_dst and known_src % known_dst == 0:
        return known_src // known_dst
    return None
