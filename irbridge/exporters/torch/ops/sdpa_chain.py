"""The attention core as exporters decompose it, recognised so that model.py calls
F.scaled_dot_product_attention (one fused kernel) instead of five to eleven ops:

    before:  q0 [* a] [-> Transpose] = q ──────┐
             k0 [* b] [-> Transpose] = kT ──── MatMul -> [* s | / s] [-> + mask] -> Softmax(-1)
                                               [-> Where(IsNaN(p), 0, p)] -> MatMul(., v)
    after:   F.scaled_dot_product_attention(q0[.permute], k0.permute, v, attn_mask=mask, scale=a*b*s)

q [.., T, D], kT [.., D, S] and v [.., S, Dv] are activations. The scalar Muls that TorchScript
puts on q and k (each by sqrt(sqrt(1/D)), before or after the heads' Transpose) join `scale`,
and the heads' Transposes become one `.permute(..)` view each (k in [.., S, D]): no copy of q
or k is made. The mask is added as it is (float, broadcast to the scores); `Where(m, 0, -inf)`
of a boolean m, which exporters repeat in every layer, is computed once
(`torch.where(m, 0.0, -inf)`) and shared by the layers. The NaN guard (a row where every score
is -inf or NaN gives NaN probabilities, which it sets to 0, so that row's output is 0) is kept
on the result, in place on SDPA's fresh output, `y.nan_to_num_(0.0, inf, -inf)` (infinities
kept): its layout stays, so merging the heads after it is a view, not a copy.
"""

from __future__ import annotations

import dataclasses
import math

import onnx_ir as ir

from ._chain import only_reader, scalar


@dataclasses.dataclass
class Core:
    """One attention core: what F.scaled_dot_product_attention takes, and the nodes it replaces."""

    q: ir.Value  # q itself (q_perm None), or the input of q's Transpose
    q_perm: list[int] | None  # q = self.q.permute(q_perm)
    k: ir.Value  # kT itself (perm None: k = kT.transpose(-2, -1)), or the input of kT's Transpose
    k_perm: list[int] | None  # k = self.k.permute(k_perm), a view in [.., S, D]
    v: ir.Value
    scale: float
    mask: ir.Value | None  # float (added), or bool m of Where(m, 0, -inf) (additive_of True)
    additive_of: bool
    guarded: bool
    covered: list[ir.Node]  # after the scores MatMul, in order; the last one's output is the result
    folded: list[ir.Node]  # before it: the scalar Muls and k's Transpose, no longer computed


def match(node: ir.Node) -> Core | None:
    """The attention core whose scores MatMul is `node`, or None."""
    if node.op_type != "MatMul" or node.domain or any(i.const_value is not None for i in node.inputs):
        return None
    q, kt = node.inputs
    if q.shape is None or kt.shape is None or len(q.shape) != 4 or len(kt.shape) != 4:
        return None
    folded: list[ir.Node] = []
    q, q_perm, a = _through_transpose(q, folded)
    k, kt_perm, b = _through_transpose(kt, folded)
    k_perm = None if kt_perm is None else [*kt_perm[:2], kt_perm[3], kt_perm[2]]  # k [.., S, D]
    covered, cur, scale, mask, additive_of = [], node, a * b, None, False
    step = only_reader(cur.outputs[0], "Mul", "Div", "Add", "Softmax")
    if step and step[0].op_type in ("Mul", "Div"):
        s = scalar(step[0].inputs[1 - step[1]])
        if s is None or (step[0].op_type == "Div" and step[1] != 0) or s == 0:
            return None
        scale *= s if step[0].op_type == "Mul" else 1.0 / s
        cur = step[0]
        covered.append(cur)
        step = only_reader(cur.outputs[0], "Add", "Softmax")
    if step and step[0].op_type == "Add":
        mask = step[0].inputs[1 - step[1]]
        if mask.const_value is None and mask.producer() is None and not mask.is_graph_input():
            return None
        cur = step[0]
        covered.append(cur)
        mask, additive_of = _boolean_mask(mask, folded)
        step = only_reader(cur.outputs[0], "Softmax")
    if not step or step[0].attributes.get_int("axis", -1) not in (-1, 3):
        return None
    cur = step[0]
    covered.append(cur)
    guard = _nan_guard(cur.outputs[0])
    if guard is not None:
        covered += guard
        cur = guard[-1]
    step = only_reader(cur.outputs[0], "MatMul")
    if not step or step[1] != 0:
        return None
    covered.append(step[0])
    v = step[0].inputs[1]
    if v.shape is None or len(v.shape) != 4 or v.const_value is not None:
        return None
    if not math.isfinite(scale) or scale == 0:
        return None
    return Core(q, q_perm, k, k_perm, v, scale, mask, additive_of, guard is not None, covered, folded)


def _unscale(x: ir.Value, folded: list[ir.Node]) -> tuple[ir.Value, float]:
    """(x0, a) when x = x0 * a (or x0 / (1/a)) by a finite nonzero scalar, read only where x is;
    (x, 1.0) otherwise. The Mul joins `folded`."""
    node = x.producer()
    if node is None or node.op_type not in ("Mul", "Div") or node.domain or len(node.inputs) != 2 \
            or len(x.uses()) != 1 or x.is_graph_output():
        return x, 1.0
    for i in (0, 1) if node.op_type == "Mul" else (0,):
        s, x0 = scalar(node.inputs[1 - i]), node.inputs[i]
        if s is None or s == 0 or not math.isfinite(s) or x0 is None or x0.const_value is not None \
                or x0.shape is None or len(x0.shape) != len(x.shape) or x0.dtype != x.dtype:
            continue
        folded.append(node)
        return x0, s if node.op_type == "Mul" else 1.0 / s
    return x, 1.0


def _through_transpose(x: ir.Value, folded: list[ir.Node]) -> tuple[ir.Value, list[int] | None, float]:
    """(x0, perm, a) when x = Transpose(x0 [* a], perm) is read only by the scores MatMul (the
    passes may have moved the scale before the heads' Transpose); else (x0, None, a) for
    x = x0 [* a]. The Transpose and Mul join `folded`."""
    node = x.producer()
    if node is not None and node.op_type == "Transpose" and not node.domain and len(x.uses()) == 1 \
            and not x.is_graph_output():
        perm = node.attributes.get_ints("perm", None)
        if perm is not None and sorted(perm) == [0, 1, 2, 3]:
            x0, a = _unscale(node.inputs[0], folded)
            folded.append(node)
            return x0, list(perm), a
    x0, a = _unscale(x, folded)
    return x0, None, a


def _boolean_mask(mask: ir.Value, folded: list[ir.Node]) -> tuple[ir.Value, bool]:
    """(m, True) for a mask `Where(m, 0, -inf)` of a boolean m read only by the scores' Add (the
    Where joins `folded`); (mask, False) otherwise."""
    node = mask.producer()
    if node is None or node.op_type != "Where" or node.domain or len(mask.uses()) != 1 or mask.is_graph_output():
        return mask, False
    cond, zero, minus_inf = node.inputs
    if cond.dtype != ir.DataType.BOOL or cond.shape is None or scalar(zero) != 0.0 or scalar(minus_inf) != -math.inf \
            or zero.dtype != mask.dtype or minus_inf.dtype != mask.dtype:
        return mask, False
    if any(len(c.const_value.shape) > len(cond.shape) for c in (zero, minus_inf)):
        return mask, False  # the constants would add axes
    folded.append(node)
    return cond, True


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
