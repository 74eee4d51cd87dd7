"""fold-constants: evaluate every node whose inputs are all constant."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes import common
from onnxscript.optimizer import _constant_folding

from . import register

_NO_LIMIT = 1 << 62


@register("fold-constants")
class FoldConstants(ir.passes.InPlacePass):
    """Evaluate nodes whose inputs are all constants and store the results as initializers.

    Weight fills and shape arithmetic become plain initializers that exporters can read:

        before:  shape(init [4]) -> ConstantOfShape(value=0.5) -> W ;  Conv(x, W)
        after:   W (initializer, 64x3x3x3)                           ;  Conv(x, W)

    Unlike onnxscript's default folding, large results (weights) are folded too and
    ConstantOfShape is not preserved: exporters need weights as values, not as recipes.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        folder = _constant_folding.FoldConstantsPass(
            shape_inference=False,
            input_size_limit=_NO_LIMIT,
            output_size_limit=_NO_LIMIT,
            should_fold=_should_fold,
        )
        modified = folder(model).modified
        modified |= common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model).modified
        return ir.passes.PassResult(model, modified)


def _should_fold(node: ir.Node) -> bool | None:
    if node.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
        return False
    return True
