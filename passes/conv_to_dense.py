"""conv-to-dense: convolutions that see the whole map become fully connected layers."""

from __future__ import annotations

import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import apply_rules
from ._weights import UNARY_ELEMENTWISE, const, reuse_or_add, single_reader


@register("conv-to-dense")
class ConvToDense(ir.passes.InPlacePass):
    """Turn convolutions whose kernel covers the whole input map into Gemms, bias carried.

    The inverse of dense-to-conv:

        before:  x[N,512,7,7] -> Conv(W[4096,512,7,7], b) -> Relu -> Conv(1x1) -> Flatten
        after:   x[N,512,7,7] -> Flatten -> Gemm(W.reshape(4096,-1), b, transB=1) -> Relu -> Gemm

    The 1x1 result map is kept as Unsqueeze(axes=[2,3]) of the Gemm output; Unsqueezes move
    past activations and vanish into a following Flatten. Optional: not in the default pipeline.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = apply_rules(model, [
            (("Conv",), _conv_to_gemm),
            (UNARY_ELEMENTWISE, _sink_unsqueeze),
            (("Flatten",), _cancel_unsqueeze),
        ])
        return ir.passes.PassResult(model, modified)


def _conv_to_gemm(graph: ir.Graph, node: ir.Node) -> bool:
    x, w = node.inputs[0], const(node.inputs[1])
    if w is None or w.ndim != 4 or x.shape is None or len(x.shape) != 4 \
            or tuple(x.shape[2:]) != w.shape[2:] or x.shape[1] != w.shape[1]:
        return False
    a = node.attributes
    if a.get_int("group", 1) != 1 or any(a.get_ints("pads", [0]) or [0]) \
            or any(d != 1 for d in a.get_ints("dilations", [1, 1]) or [1]) \
            or a.get_string("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return False
    has_bias = len(node.inputs) > 2 and node.inputs[2] is not None
    if has_bias and const(node.inputs[2]) is None:
        return False
    flat = ir.node("Flatten", [x], {"axis": 1}, name=f"{node.name}_flatten")
    inputs = [flat.outputs[0], reuse_or_add(graph, node.inputs[1], w.reshape(w.shape[0], -1), node, "dense")]
    if has_bias:
        inputs.append(node.inputs[2])
    gemm = ir.node("Gemm", inputs, {"transB": 1}, name=node.name)
    axes = ir.Value(name=f"{node.name}_axes", shape=ir.Shape([2]), type=ir.TensorType(ir.DataType.INT64),
                    const_value=ir.tensor([2, 3], dtype=ir.DataType.INT64, name=f"{node.name}_axes"))
    graph.register_initializer(axes)
    unsq = ir.node("Unsqueeze", [gemm.outputs[0], axes], name=f"{node.name}_map")
    for n in (flat, gemm, unsq):
        copy_provenance(node, n)
    ir.convenience.replace_nodes_and_values(graph, node, [node], [flat, gemm, unsq],
                                            [node.outputs[0]], [unsq.outputs[0]])
    return True


def _is_map_unsqueeze(node: ir.Node | None) -> bool:
    return node is not None and node.op_type == "Unsqueeze" and len(node.inputs) > 1 \
        and const(node.inputs[1]) is not None and list(const(node.inputs[1])) == [2, 3] \
        and node.inputs[0].shape is not None and len(node.inputs[0].shape) == 2


def _sink_unsqueeze(graph: ir.Graph, node: ir.Node) -> bool:
    unsq = node.inputs[0].producer()
    if not _is_map_unsqueeze(unsq) or single_reader(unsq.outputs[0]) is not node or node.op_type == "PRelu" \
            or any(o.uses() or o.is_graph_output() for o in node.outputs[1:]):
        return False
    act = ir.Node(node.domain, node.op_type, [unsq.inputs[0], *node.inputs[1:]],
                  list(node.attributes.values()), name=node.name, num_outputs=1)
    copy_provenance(node, act)
    new_unsq = ir.node("Unsqueeze", [act.outputs[0], unsq.inputs[1]], name=unsq.name)
    copy_provenance(unsq, new_unsq)
    ir.convenience.replace_nodes_and_values(graph, node, [unsq, node], [act, new_unsq],
                                            [node.outputs[0]], [new_unsq.outputs[0]])
    return True


def _cancel_unsqueeze(graph: ir.Graph, flat: ir.Node) -> bool:
    """Flatten(Unsqueeze(y, [2, 3])) is y for a 2-D y."""
    unsq = flat.inputs[0].producer()
    if flat.attributes.get_int("axis", 1) != 1 or not _is_map_unsqueeze(unsq) \
            or single_reader(unsq.outputs[0]) is not flat:
        return False
    y = unsq.inputs[0]
    out = flat.outputs[0]
    if out.is_graph_output():
        ident = ir.node("Identity", [y], name=flat.name)
        ir.convenience.replace_nodes_and_values(graph, flat, [unsq, flat], [ident], [out], [ident.outputs[0]])
    else:
        out.replace_all_uses_with(y)
        graph.remove([flat, unsq], safe=True)
    return True
