"""fold-weight-layout: fold Transpose/Reshape of a weight into the initializer."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import LAYOUT

from . import register
from ._weights import FLIP, const, feeds_weight, replace_with_constant


@register("fold-weight-layout")
class FoldWeightLayout(ir.passes.InPlacePass):
    """Fold Transpose/Reshape chains on weight initializers into canonical-layout initializers.

    Importers say literally how a kernel is stored; this pass stores it as ONNX wants it:

        before:  W [3,3,64,128] (irbridge.layout=HWIO) -> Transpose(perm=3,2,0,1) -> Conv(x, ., b)
        after:   W [128,64,3,3] (no mark: OIHW)                                    -> Conv(x, W, b)

    The mark's letters follow the permutation; it is removed once the weight is in the layout
    its consumer defines (OIHW for Conv, IOHW for ConvTranspose, per transB for Gemm). Only
    constants that end in a weight input are touched; the initializer keeps its name when no
    other node reads it.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        changed = True
        while changed:  # a chain folds one op at a time, from the initializer outward
            changed = False
            for node in list(model.graph):
                if node.op_type not in ("Transpose", "Reshape") or node.domain != "":
                    continue
                array = const(node.inputs[0])
                if array is None or not feeds_weight(node.outputs[0]):
                    continue
                mark = node.inputs[0].metadata_props.get(LAYOUT)
                if node.op_type == "Transpose":
                    perm = node.attributes.get_ints("perm", None) or list(reversed(range(array.ndim)))
                    array = array.transpose(perm)
                    mark = _permute_mark(mark, perm)
                else:
                    shape = const(node.inputs[1])
                    if shape is None:
                        continue
                    array = _onnx_reshape(array, shape, node.attributes.get_int("allowzero", 0))
                    mark = None if mark is None else "?"  # a reshape ends what the letters can say
                replace_with_constant(model.graph, node, array, mark)
                changed = modified = True
        return ir.passes.PassResult(model, modified)


def _permute_mark(mark: str | None, perm) -> str | None:
    if not mark:
        return mark
    letters, flip = (mark[: -len(FLIP)], FLIP) if mark.endswith(FLIP) else (mark, "")
    if len(letters) != len(perm):
        return mark
    return "".join(letters[p] for p in perm) + flip


def _onnx_reshape(array: np.ndarray, shape: np.ndarray, allowzero: int) -> np.ndarray:
    dims = [int(d) for d in shape]
    if not allowzero:
        dims = [array.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return array.reshape(dims)
