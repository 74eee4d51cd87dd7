"""The erf GELU as exporters decompose it, recognised so that model.py calls nn.GELU once:

    x -> Div(sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)      (TorchScript's F.gelu, BERT)
    x -> Mul(1/sqrt 2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)

Five elementwise passes over the activations become one (the same numbers: torch's GELU is
x * 0.5 * (1 + erf(x / sqrt 2))). The first node's converter calls `match`; the other four
nodes are marked done and their output is the GELU's.
"""

from __future__ import annotations

import math

import onnx_ir as ir


def _only_reader(v: ir.Value, op_type: str) -> tuple[ir.Node, int] | None:
    uses = list(v.uses())
    if len(uses) != 1 or v.is_graph_output() or uses[0][0].op_type != op_type or uses[0][0].domain:
        return None
    return uses[0]


def _scalar(v: ir.Value | None) -> float | None:
    if v is None or v.const_value is None:
        return None
    a = v.const_value.numpy()
    return float(a.reshape(-1)[0]) if a.size == 1 and a.dtype.kind == "f" else None


def match(node: ir.Node) -> tuple[ir.Value, list[ir.Node]] | None:
    """(x, [erf, add, mul, mul]) when `node` (a Div or Mul of x by a constant) starts an erf GELU."""
    if node.op_type not in ("Div", "Mul") or len(node.inputs) != 2:
        return None
    x, k = node.inputs[0], _scalar(node.inputs[1])
    want = math.sqrt(2.0) if node.op_type == "Div" else 1 / math.sqrt(2.0)
    if k is None or abs(k - want) > 1e-6 * want:
        return None
    erf = _only_reader(node.outputs[0], "Erf")
    add = erf and _only_reader(erf[0].outputs[0], "Add")
    if not add or _scalar(add[0].inputs[1 - add[1]]) != 1.0:
        return None
    mul = _only_reader(add[0].outputs[0], "Mul")
    if not mul or mul[0].inputs[1 - mul[1]] is not x:
        return None
    half = _only_reader(mul[0].outputs[0], "Mul")
    if not half or _scalar(half[0].inputs[1 - half[1]]) != 0.5:
        return None
    return x, [erf[0], add[0], mul[0], half[0]]
