"""onnx_ir's common clean-up passes, registered under irbridge's names (used, not rewritten)."""

from __future__ import annotations

from onnx_ir.passes import common

from . import register


@register("eliminate-identity", "Remove Identity nodes, wiring their input straight to their readers.")
class EliminateIdentity(common.IdentityEliminationPass):
    """onnx_ir's IdentityEliminationPass, keeping the Identity that makes a subgraph output of a
    value from an enclosing graph or of a value that is already a graph output (onnx_ir's pass
    would make one value the output of two graphs and fail):

        Loop body:  If(then: y = Identity(outer_v))  ->  kept (outer_v lives in the Loop body)
        main graph: a -> Identity -> b -> Relu       ->  a -> Relu
    """

    def _try_eliminate_identity_node(self, node) -> bool:
        if node.op_type == "Identity" and not node.domain and len(node.inputs) == 1 \
                and node.inputs[0] is not None and node.outputs and node.outputs[0].is_graph_output():
            x = node.inputs[0]
            home = x.producer().graph if x.producer() is not None else getattr(x, "graph", None)
            if home is not node.graph or x.is_graph_output():
                return False
        return super()._try_eliminate_identity_node(node)


register("remove-unused", "Remove nodes, initializers and opsets that no graph output depends on.")(
    common.RemoveUnusedNodesPass
)
register("topological-sort", "Order nodes so that every node follows the producers of its inputs.")(
    common.TopologicalSortPass
)
register("infer-shapes", "Run ONNX shape inference and record every value's shape and type.")(
    common.ShapeInferencePass
)
