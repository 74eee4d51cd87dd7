"""sink-head-transposes: move attention's head-split Transposes down to the MatMuls that read them."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import apply_rules, rebuilt
from ._shape_read import is_dim, target_entries
from ._weights import add_initializer, const, single_reader
from .cancel_transposes import BINARY_ELEMENTWISE, UNARY, _perm
from .cancel_transposes import _step as cancel_step

_ENDS = {"MatMul", "Transpose"}  # readers that take a transposed view as it is


@register("sink-head-transposes")
class SinkHeadTransposes(ir.passes.InPlacePass):
    """Move the head split's Transpose of attention down past rotary embeddings and repeat_kv.

    LLaMA-style attention splits heads ([B,S,H,D] -> Transpose(0,2,1,3) -> [B,H,S,D]) and then
    rotates q and k (Mul by cos/sin, Slice halves, Neg, Concat) and repeats k and v for grouped
    queries (Unsqueeze, Expand, Reshape) before the attention MatMuls. A channels-last target
    holds the Transpose as a free view but needs every one of those ops in ONNX order: a
    Permute each. Done in [B,S,H,D] order instead, they need none, and the Transposes reach the
    MatMuls, which read them as views (an einsum subscript):

        before:  q [B,S,H,D] -> Transpose(0,2,1,3) -> {Mul(cos4), Slice, Slice -> Neg} -> Concat
                   -> Mul(sin4) -> Add -> MatMul
        after:   q [B,S,H,D] -> {Mul(cos4'), Slice, Slice -> Neg} -> Concat -> Mul(sin4') -> Add
                   -> Transpose(0,2,1,3) -> MatMul          (cos4' = cos unsqueezed at axis 2)

    Only Transposes that keep the first and last axes move (head transposes, never an image's
    layout), and a Transpose read by several nodes is copied for each only when every reader
    lets it through or takes it as a view (MatMul, Transpose). Moves past: elementwise ops
    (other operands constant, the same Transpose, or an Unsqueeze whose new axes can be placed
    instead), Slice, Concat, Unsqueeze, Expand and a Reshape that merges axes adjacent in both
    orders; cancel-transposes' own moves run in the same loop.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(model, apply_rules(model, [(("Transpose",), _step)]))


def _fresh(graph: ir.Graph, base: str) -> str:
    """A node name not yet in the graph (onnxruntime refuses two nodes of one name)."""
    names = {n.name for n in graph}
    name, k = base, 1
    while name in names:
        k += 1
        name = f"{base}_{k}"
    return name


def _head_perm(t: ir.Node) -> list[int] | None:
    p = _perm(t)
    if p is None or len(p) < 3 or p[0] != 0 or p[-1] != len(p) - 1 or p == sorted(p):
        return None
    return p


def _step(graph: ir.Graph, t: ir.Node) -> bool:
    perm = _head_perm(t)
    if perm is None or const(t.inputs[0]) is not None or t.outputs[0].is_graph_output():
        return False
    readers = [n for n, _ in t.outputs[0].uses()]
    if len(set(readers)) != len(readers):
        return False
    if len(readers) > 1:
        if all(n.op_type in _ENDS or _movable(t, n, perm) for n in readers) and \
                not all(n.op_type in _ENDS for n in readers):
            return _fan_out(graph, t, readers)
        return False
    if not readers:
        return False
    r = readers[0]
    if r.op_type in BINARY_ELEMENTWISE and _place_unsqueezes(graph, t, r, perm):
        return True
    rule = _RULES.get(r.op_type)
    if rule is not None and rule(graph, t, r, perm):
        return True
    return cancel_step(graph, t)


def _movable(t: ir.Node, r: ir.Node, perm) -> bool:
    op = r.op_type
    if op in UNARY or op in ("Slice", "Unsqueeze", "Expand"):
        return r.inputs[0] is t.outputs[0]
    if op == "Reshape":
        return r.inputs[0] is t.outputs[0] and _merge_plan(t, r, perm) is not None
    if op == "Concat":
        return all(v.producer() is not None and v.producer().op_type == "Transpose" and _perm(v.producer()) == perm
                   for v in r.inputs)
    if op in BINARY_ELEMENTWISE and op != "PRelu":
        return all(v is t.outputs[0] or const(v) is not None or _unsqueeze_axes_for(v, perm) is not None
                   or (v.producer() is not None and v.producer().op_type == "Transpose" and _perm(v.producer()) == perm)
                   for v in r.inputs)
    return False


def _fan_out(graph, t: ir.Node, readers) -> bool:
    """One copy of t per reader, so that each can move on its own."""
    for k, r in enumerate(readers[1:], start=1):
        copy = ir.node("Transpose", [t.inputs[0]], {"perm": _perm(t)}, name=_fresh(graph, f"{t.name}_{k}"))
        copy_provenance(t, copy)
        copy.outputs[0].shape, copy.outputs[0].type = t.outputs[0].shape, t.outputs[0].type
        graph.insert_after(t, copy)
        for i, v in enumerate(r.inputs):
            if v is t.outputs[0]:
                r.replace_input_with(i, copy.outputs[0])
    return True


def _unsqueeze_axes_for(v: ir.Value, perm) -> list[int] | None:
    """For v = Unsqueeze(c, axes) of the Transpose's rank: axes' with Unsqueeze(c, axes')
    transposed by `perm` equal to v (the inserted size-1 axes moved, c's axes kept in order)."""
    n = v.producer()
    if n is None or n.op_type != "Unsqueeze" or n.domain or v.shape is None or len(v.shape) != len(perm):
        return None
    axes = const(n.inputs[1]) if len(n.inputs) > 1 else None
    if axes is None:
        return None
    rank = len(perm)
    inserted = {int(a) % rank for a in axes.reshape(-1)}
    inverse = list(np.argsort(perm))  # v.transpose(inverse) is what Unsqueeze(c, axes') must give
    kept = [a for a in inverse if a not in inserted]
    if kept != sorted(kept):
        return None
    return sorted(i for i, a in enumerate(inverse) if a in inserted)


def _place_unsqueezes(graph, t: ir.Node, r: ir.Node, perm) -> bool:
    """Binary op of T(x) and Unsqueeze(c): write the Unsqueeze as T(Unsqueeze(c, axes')), so
    that cancel-transposes moves the pair past the op."""
    changed = False
    for i, v in enumerate(r.inputs):
        if v is t.outputs[0] or const(v) is not None:
            continue
        axes = _unsqueeze_axes_for(v, perm)
        if axes is None:
            continue
        src = v.producer()
        axes_v = add_initializer(graph, f"{src.name}_axes", np.array(axes, np.int64))
        unsq = ir.node("Unsqueeze", [src.inputs[0], axes_v], name=_fresh(graph, f"{src.name}_moved"))
        again = ir.node("Transpose", [unsq.outputs[0]], {"perm": list(perm)},
                        name=_fresh(graph, f"{src.name}_as_transposed"))
        for n in (unsq, again):
            copy_provenance(src, n)
        again.outputs[0].shape, again.outputs[0].type = v.shape, v.type
        graph.insert_before(r, [unsq, again])
        r.replace_input_with(i, again.outputs[0])
        changed = True
    return changed


def _replace_with_moved(graph, t: ir.Node, r: ir.Node, inputs, attrs: dict, new_perm, extra=()) -> bool:
    """r(T(x), ...) -> T'(r'(x, ...)): r' is r with `inputs` and `attrs` changed."""
    moved = rebuilt(r, inputs, attrs)
    new_t = ir.node("Transpose", [moved.outputs[0]], {"perm": list(new_perm)}, name=t.name)
    copy_provenance(t, new_t)
    old = [t, r] if single_reader(t.outputs[0]) is r else [r]
    ir.convenience.replace_nodes_and_values(graph, r, old, [*extra, moved, new_t], [r.outputs[0]], [new_t.outputs[0]])
    return True


def _slice(graph, t, r, perm) -> bool:
    if r.inputs[0] is not t.outputs[0] or len(r.inputs) < 4 or const(r.inputs[3]) is None:
        return False
    rank = len(perm)
    axes = [perm[int(a) % rank] for a in const(r.inputs[3]).reshape(-1)]
    new_axes = add_initializer(graph, f"{r.name}_axes", np.array(axes, np.int64))
    return _replace_with_moved(graph, t, r, [t.inputs[0], *r.inputs[1:3], new_axes, *r.inputs[4:]], {}, perm)


def _unsqueeze(graph, t, r, perm) -> bool:
    axes = const(r.inputs[1]) if len(r.inputs) > 1 else None
    if r.inputs[0] is not t.outputs[0] or axes is None:
        return False
    out_rank = len(perm) + axes.size
    inserted = sorted(int(a) % out_rank for a in axes.reshape(-1))
    # the output's axes in order: x's axes read through perm, the new ones where they were
    source = iter(perm)
    layout = [("new", i) if i in inserted else ("x", next(source)) for i in range(out_rank)]
    # in x's order: each new axis right after the x axis before it (or first)
    order, placed = [], []
    for i, (kind, _) in enumerate(layout):
        if kind == "x":
            continue
        prev = next((b for k, b in reversed(layout[:i]) if k == "x"), None)
        placed.append((prev, i))
    x_axes = sorted(a for k, a in layout if k == "x")
    for a in [None, *x_axes]:
        if a is not None:
            order.append(("x", a))
        order.extend(("new", i) for p, i in placed if p == a)
    new_axes = [j for j, (k, _) in enumerate(order) if k == "new"]
    new_perm = [order.index(entry) for entry in layout]
    axes_v = add_initializer(graph, f"{r.name}_axes", np.array(new_axes, np.int64))
    return _replace_with_moved(graph, t, r, [t.inputs[0], axes_v], {}, new_perm)


def _expand(graph, t, r, perm) -> bool:
    shape = r.inputs[1]
    if r.inputs[0] is not t.outputs[0] or shape.shape is None or list(shape.shape) != [len(perm)]:
        return False
    inverse = np.argsort(perm).astype(np.int64)
    c = const(shape)
    extra = []
    if c is not None:
        new_shape = add_initializer(graph, f"{r.name}_shape", c.reshape(-1)[inverse])
    else:
        idx = add_initializer(graph, f"{r.name}_order", inverse)
        g = ir.node("Gather", [shape, idx], {"axis": 0}, name=_fresh(graph, f"{r.name}_order"))
        copy_provenance(r, g)
        new_shape, extra = g.outputs[0], [g]
    return _replace_with_moved(graph, t, r, [t.inputs[0], new_shape], {}, perm, extra)


def _merge_plan(t: ir.Node, r: ir.Node, perm):
    """For Reshape(T(x), target) that merges runs of T(x)'s axes which are also adjacent and in
    order in x: (groups of T(x) axes per target entry), else None."""
    y = t.outputs[0]
    entries = target_entries(r.inputs[1])
    if entries is None or y.shape is None or r.attributes.get_int("allowzero", 0) and 0 in entries:
        return None
    groups, i = [], 0
    for j, e in enumerate(entries):
        if i >= len(perm):
            return None
        if is_dim(e, y, i, position=j):
            groups.append([i])
            i += 1
            continue
        if not isinstance(e, int) or e <= 0:
            return None
        k, size = i, 1
        while k < len(perm) and isinstance(y.shape[k], int) and size < e:
            size *= y.shape[k]
            k += 1
        if size != e or k - i < 2:
            return None
        groups.append(list(range(i, k)))
        i = k
    if i != len(perm):
        return None
    for g in groups:
        src = [perm[a] for a in g]
        if src != list(range(src[0], src[0] + len(src))):
            return None
    return groups


def _reshape(graph, t, r, perm) -> bool:
    groups = _merge_plan(t, r, perm) if r.inputs[0] is t.outputs[0] else None
    if groups is None:
        return False
    x = t.inputs[0]
    by_source = sorted(range(len(groups)), key=lambda j: perm[groups[j][0]])  # target entries in x's order
    entries = target_entries(r.inputs[1])
    if any(e == 0 and by_source[j] != j for j, e in enumerate(entries)):
        return False  # a 0 copies the input's size at its position: it cannot move
    extra = []
    c = const(r.inputs[1])
    if c is not None:
        new_target = add_initializer(graph, f"{r.name}_shape", c.reshape(-1)[by_source])
    else:
        idx = add_initializer(graph, f"{r.name}_order", np.array(by_source, np.int64))
        g = ir.node("Gather", [r.inputs[1], idx], {"axis": 0}, name=_fresh(graph, f"{r.name}_order"))
        copy_provenance(r, g)
        new_target, extra = g.outputs[0], [g]
    new_perm = [by_source.index(j) for j in range(len(groups))]
    return _replace_with_moved(graph, t, r, [x, new_target], {}, new_perm, extra)


_RULES = {"Slice": _slice, "Unsqueeze": _unsqueeze, "Expand": _expand, "Reshape": _reshape}
