"""onnx_ir's common clean-up passes, registered under irbridge's names (used, not rewritten)."""

from __future__ import annotations

from onnx_ir.passes import common

from . import register

register("eliminate-identity", "Remove Identity nodes, wiring their input straight to their readers.")(
    common.IdentityEliminationPass
)
register("remove-unused", "Remove nodes, initializers and opsets that no graph output depends on.")(
    common.RemoveUnusedNodesPass
)
register("topological-sort", "Order nodes so that every node follows the producers of its inputs.")(
    common.TopologicalSortPass
)
register("infer-shapes", "Run ONNX shape inference and record every value's shape and type.")(
    common.ShapeInferencePass
)
