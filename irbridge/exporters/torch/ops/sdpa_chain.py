"""The attention core as exporters decompose it, recognised so that model.py calls
F.scaled_dot_product_attention (one fused kernel) instead of five to seven ops:

    q @ kT [-> * s | / s] [-> + mask] -> Softmax(-1) [-> Where(IsNaN(p), 0, p)] -> @ v

q [.., T, D], kT [.., D, S] and v [.., S, Dv] are activations; the mask is added as it is
(float, broadcast to the scores). The NaN guard (a row where every position is -inf gives NaN
probabilities, which it sets to 0, so that row's output is 0) is kept on the result:
`y.masked_fill(y.isnan(), 0.0)`.
"""

from __future__ import annotations

import math

import onnx_ir as ir

from ._chain import only_reader, scalar


def match(node: ir.Node):
    """(q, kT, v, scale, mask or None, guarded, [nodes it covers; the last one's output is the result])."""
    if node.op_type != "MatMul" or node.domain or any(i.const_value is not None for i in node.inputs):
        return None
    q, kt = node.inputs
    if q.shape is None or kt.shape is None or len(q.shape) != 4 or len(kt.shape) != 4:
        return None
    covered, cur, scale, mask, guarded = [], node, 1.0, None, False
    step = only_reader(cur.outputs[0], "Mul", "Div", "Add", "Softmax")
    if step and step[0].op_type in ("Mul", "Div"):
        s = scalar(step[0].inputs[1 - step[1]])
        if s is None or (step[0].op_type == "Div" and step[1] != 0) or s == 0:
            return None
        scale = s if step[0].op_type == "Mul" else 1.0 / s
        cur = step[0]
        covered.append(cur)
        step = only_reader(cur.outputs[0], "Add", "Softmax")
    if step and step[0].op_type == "Add":
        mask = step[0].inputs[1 - step[1]]
        if mask.const_value is None and mask.producer() is None and not mask.is_graph_input():
            return None
        cur = step[0]
        covered.append(cur)
        step = only_reader(cur.outputs[0], "Softmax")
    if not step or step[0].attributes.get_int("axis", -1) not in (-1, 3):
        return None
    cur = step[0]
    covered.append(cur)
    guard = _nan_guard(cur.outputs[0])
    if guard is not None:
        covered += guard
        guarded = True
        cur = guard[-1]
    step = only_reader(cur.outputs[0], "MatMul")
    if not step or step[1] != 0:
        return None
    covered.append(step[0])
    v = step[0].inputs[1]
    if v.shape is None or len(v.shape) != 4 or v.const_value is not None:
        return None
    if not math.isfinite(scale):
        return None
    return q, kt, v, scale, mask, guarded, covered


def _nan_guard(p: ir.Value):
    """[IsNaN, Where] of `Where(IsNaN(p), 0, p)`, or None."""
    uses = list(p.uses())
    isnan = [n for n, _ in uses if n.op_type == "IsNaN" and not n.domain]
    where = [n for n, _ in uses if n.op_type == "Where" and not n.domain]
    if len(uses) != 2 or len(isnan) != 1 or len(where) != 1 or p.is_graph_output():
        return None
    w = where[0]
    if w.inputs[0] is not isnan[0].outputs[0] or w.inputs[2] is not p or scalar(w.inputs[1]) != 0.0:
        return None
    if len(list(isnan[0].outputs[0].uses())) != 1:
        return None
    return [isnan[0], w]
