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

from ._chain import only_reader, scalar


def match(node: ir.Node) -> tuple[ir.Value, list[ir.Node]] | None:
    """(x, [erf, add, mul, mul]) when `node` (a Div or Mul of x by a constant) starts an erf GELU."""
    if node.op_type not in ("Div", "Mul") or len(node.inputs) != 2:
        return None
    x, k = node.inputs[0], scalar(node.inputs[1])
    want = math.sqrt(2.0) if node.op_type == "Div" else 1 / math.sqrt(2.0)
    if k is None or abs(k - want) > 1e-6 * want:
        return None
    erf = only_reader(node.outputs[0], "Erf")
    add = erf and only_reader(erf[0].outputs[0], "Add")
    if not add or scalar(add[0].inputs[1 - add[1]]) != 1.0:
        return None
    mul = only_reader(add[0].outputs[0], "Mul")
    if not mul or mul[0].inputs[1 - mul[1]] is not x:
        return None
    half = only_reader(mul[0].outputs[0], "Mul")
    if not half or scalar(half[0].inputs[1 - half[1]]) != 0.5:
        return None
    return x, [erf[0], add[0], mul[0], half[0]]
