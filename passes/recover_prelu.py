"""recover-prelu: TF's composed PReLU back into one PRelu."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import copy_provenance, source_of

from . import register
from ._weights import add_initializer, const


@register("recover-prelu")
class RecoverPRelu(ir.passes.InPlacePass):
    """Turn TF's PReLU, `relu(x) + (-alpha) * relu(-x)`, back into ONNX's PRelu(x, alpha).

    Keras's PReLU reaches ONNX through tf2onnx as five nodes; the exporters then have no layer to
    give it (the Keras exporter refused the Neg, the PyTorch one wrote the arithmetic out). With
    the pass they write `nn.PReLU` / `keras.layers.PReLU` again, with the layer's own slopes:

        before:  Add(Relu(x), Mul(Relu(Neg(x)), c))      (or Sub(Relu(x), Mul(Relu(Neg(x)), alpha)))
        after:   PRelu(x, alpha = -c)

    Only taken when the slope is a constant that broadcasts to x without growing it.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in list(model.graph):
            if node.op_type not in ("Add", "Sub") or node.domain != "" or node.graph is None:
                continue
            found = _match(node)
            if found is None:
                continue
            x, alpha = found
            slope = add_initializer(model.graph, f"{source_of(node)}.alpha", alpha)
            prelu = ir.node("PRelu", [x, slope], name=f"{node.name}_prelu")
            copy_provenance(node, prelu)
            prelu.metadata_props["irbridge.source_op"] = "PReLU"
            model.graph.insert_before(node, prelu)
            old, out = node.outputs[0], prelu.outputs[0]
            out.shape, out.type = old.shape, old.type
            ir.convenience.replace_all_uses_with(old, out, replace_graph_outputs=True)
            name = old.name
            old.name = f"{name}_composed"
            out.name = name
            modified = True
        if modified:
            from onnx_ir.passes import common

            common.RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified)


def _producer(v: ir.Value | None, op: str) -> ir.Node | None:
    node = v.producer() if v is not None else None
    return node if node is not None and node.op_type == op and node.domain == "" else None


def _match(node: ir.Node):
    """(x, alpha) when `node` is relu(x) + c * relu(-x) (c = -alpha) or relu(x) - alpha * relu(-x)."""
    if len(node.inputs) != 2:
        return None
    orders = [(0, 1), (1, 0)] if node.op_type == "Add" else [(0, 1)]
    for pos, neg in orders:
        relu = _producer(node.inputs[pos], "Relu")
        mul = _producer(node.inputs[neg], "Mul")
        if relu is None or mul is None:
            continue
        x = relu.inputs[0]
        for k in (0, 1):
            relu_neg = _producer(mul.inputs[k], "Relu")
            neg_x = _producer(relu_neg.inputs[0], "Neg") if relu_neg is not None else None
            c = const(mul.inputs[1 - k])
            if neg_x is None or neg_x.inputs[0] is not x or c is None:
                continue
            alpha = -c if node.op_type == "Add" else c
            if _broadcasts(alpha, x):
                return x, np.ascontiguousarray(alpha)
    return None


def _broadcasts(alpha: np.ndarray, x: ir.Value) -> bool:
    """alpha broadcasts to x's shape without growing it (PRelu's unidirectional broadcasting)."""
    if x.shape is None or alpha.ndim > len(x.shape):
        return False
    for a, d in zip(reversed(alpha.shape), reversed(list(x.shape))):
        if a != 1 and a != d:
            return False
    return True
