"""Reading a Reshape's target shape before run time, for passes that rewrite Reshapes."""

from __future__ import annotations

import ast

import numpy as np
import onnx_ir as ir

from ._weights import const

# An entry is an int (-1 and 0 keep their Reshape meaning), ("dim", value, axis) for a size read
# from a tensor at run time, or None when it cannot be told; with `symbolic`, also
# ("expr", op, entry, entry) for Add/Sub/Mul/Div of sizes read at run time.


def target_entries(v: ir.Value | None, depth: int = 0, arithmetic: bool = False,
                   symbolic: bool = False) -> list | None:
    """The entries of a 1-D int64 shape value as far as they are known before run time: ints
    for constants, ("dim", x, axis) for `Shape(x)[axis]`, None where unknown. Follows Shape (with
    start/end), Slice with constant bounds, Gather with constant indices, Concat, Unsqueeze,
    Squeeze, Cast, Identity and a Reshape to one axis; with `arithmetic`, Mul/Div/Add/Sub of known
    ints too (the Keras exporter's reading); with `symbolic`, of run-time sizes too, as "expr"
    entries that `is_dim` compares with a dim's symbolic name (a dynamo export's
    `((sequence//20)) - 1`). None if the value is none of these."""
    if v is None or depth > 20:
        return None
    c = const(v)
    if c is not None:
        return [int(x) for x in c.reshape(-1)]
    n = v.producer()
    if n is None or n.domain:
        return None

    def arg(i):
        return target_entries(n.inputs[i], depth + 1, arithmetic, symbolic) if i < len(n.inputs) else None

    if n.op_type == "Shape":
        x = n.inputs[0]
        if x.shape is None:
            return None
        rank = len(x.shape)
        start, end = n.attributes.get_int("start", 0), n.attributes.get_int("end", rank)
        return [d if isinstance(d, int) else ("dim", x, i) for i, d in list(enumerate(x.shape))[start:end]]
    if n.op_type in ("Unsqueeze", "Squeeze", "Cast", "Identity"):
        return arg(0)
    if n.op_type == "Reshape" and len(n.inputs) > 1:  # a scalar size made a 1-D one, or the reverse
        to = const(n.inputs[1])
        data = arg(0)
        return data if data is not None and to is not None and to.size <= 1 and \
            [int(t) for t in to.reshape(-1)] in ([], [-1], [len(data)]) else None
    if n.op_type == "Concat":
        parts = [arg(i) for i in range(len(n.inputs))]
        return None if any(p is None for p in parts) else sum(parts, [])
    if n.op_type == "Gather":
        data, idx = arg(0), const(n.inputs[1])
        return None if data is None or idx is None else [data[int(i)] for i in idx.reshape(-1)]
    if n.op_type == "Slice":
        data = arg(0)
        bounds = [const(n.inputs[i]) if i < len(n.inputs) and n.inputs[i] is not None else None for i in range(1, 5)]
        if data is None or bounds[0] is None or bounds[1] is None:
            return None
        if bounds[2] is not None and [int(a) for a in bounds[2].reshape(-1)] not in ([0], [-1]):
            return None
        step = int(bounds[3].reshape(-1)[0]) if bounds[3] is not None else 1
        return data[slice(int(bounds[0].reshape(-1)[0]), int(bounds[1].reshape(-1)[0]), step)]
    if n.op_type == "Where" and len(n.inputs) == 3:  # expand(..., -1, ...): Where(s == -1, 1, s)
        cond = n.inputs[0].producer() if n.inputs[0] is not None else None
        ones, data = const(n.inputs[1]), arg(2)
        if cond is not None and cond.op_type == "Equal" and cond.inputs[0] is n.inputs[2] and data is not None \
                and const(cond.inputs[1]) is not None and const(cond.inputs[1]).size in (1, len(data)) \
                and (const(cond.inputs[1]) == -1).all() and ones is not None and ones.size in (1, len(data)) \
                and (ones == 1).all():
            return [1 if e == -1 else e for e in data]
        return None
    if (arithmetic or symbolic) and n.op_type in _ARITHMETIC:
        return _elementwise(_ARITHMETIC[n.op_type], arg(0), arg(1), n.op_type if symbolic else None)
    return None


_ARITHMETIC = {"Mul": lambda p, q: p * q, "Div": lambda p, q: p // q, "Add": lambda p, q: p + q,
               "Sub": lambda p, q: p - q}


def _elementwise(f, x: list | None, y: list | None, op: str | None = None) -> list | None:
    """f over two entry lists (one may be a single entry, broadcast); None where either is
    unknown; with `op`, ("expr", op, p, q) where either is a run-time size."""
    if x is None or y is None:
        return None
    if len(x) != len(y):
        if len(x) == 1:
            x = x * len(y)
        elif len(y) == 1:
            y = y * len(x)
        else:
            return None
    return [f(p, q) if isinstance(p, int) and isinstance(q, int) else
            ("expr", op, p, q) if op is not None and p is not None and q is not None else None
            for p, q in zip(x, y)]


def is_whole_shape(n: ir.Node | None, x: ir.Value) -> bool:
    """Whether `n` is Shape(x) over every axis (start 0, end absent or past the rank; the
    dynamo exporter writes start=0 explicitly)."""
    if n is None or n.op_type != "Shape" or n.domain or n.inputs[0] is not x or x.shape is None:
        return False
    rank = len(x.shape)
    return n.attributes.get_int("start", 0) == 0 and n.attributes.get_int("end", rank) >= rank


def is_dim(entry, x: ir.Value, axis: int, position: int | None = None, allowzero: bool = False) -> bool:
    """Whether a target entry provably is x's size on `axis`: read from x (or an equal static
    size), or a 0 at the same position of a Reshape of x (copy, unless allowzero)."""
    d = x.shape[axis] if x.shape is not None else None
    if isinstance(entry, tuple) and entry[0] == "expr":
        form = _form(entry)
        return form is not None and form == _dim_form(d)
    if isinstance(entry, tuple):
        _, y, k = entry
        if y is x and k % len(x.shape) == axis % len(x.shape):
            return True
        other = y.shape[k] if y.shape is not None else None
        if same_size(other, d):
            return True
        form = _dim_form(other)
        if form is not None and form == _dim_form(d):
            return True
        from ._dim_origin import dim_origin, same_origin  # it reads entries with this module

        return same_origin(dim_origin(y, k), dim_origin(x, axis))
    if isinstance(entry, int):
        if entry == 0 and not allowzero and position is not None:
            return position % len(x.shape) == axis % len(x.shape)
        return isinstance(d, int) and entry == d > 0
    return False


def same_size(a, b) -> bool:
    """Two dims known to be equal: the same static size, or the same named symbolic dim (ONNX
    declares dims with one dim_param equal)."""
    if isinstance(a, int) or isinstance(b, int):
        return isinstance(a, int) and a == b
    va, vb = getattr(a, "value", None), getattr(b, "value", None)
    return va is not None and va == vb


def allowzero(node: ir.Node) -> bool:
    return bool(node.attributes.get_int("allowzero", 0))


def keeps_batch(entries: list, x: ir.Value, allowzero: bool = False) -> bool:
    """Whether a Reshape of x to `entries` provably keeps x's axis 0 as its axis 0: the first
    entry is x's size there (see `is_dim`), or -1 with the others static and as many elements
    per batch item as x has."""
    if is_dim(entries[0], x, 0, position=0, allowzero=allowzero):
        return True
    rest = x.shape[1:] if x.shape is not None else None
    if entries[0] != -1 or rest is None or not all(isinstance(d, int) for d in rest):
        return False
    if not all(isinstance(e, int) and e > 0 for e in entries[1:]):
        return False
    return int(np.prod(entries[1:])) == int(np.prod(rest))


# --- symbolic sizes ------------------------------------------------------------------------------
# A size expression in canonical form: {atom: nonzero coefficient}, the atom () for the constant,
# ("sym", name) for a named dim, ("floordiv", form, divisor) for a floor division by a constant.
# Two sizes with equal forms are equal; unequal forms prove nothing.


def _dim_form(d) -> dict | None:
    """The form of a dim: an int, or a named symbolic dim (its name read as an expression of
    other names, as the dynamo exporter writes `((sequence//5)) - 1`; a name that is no such
    expression is one atom)."""
    if isinstance(d, int):
        return {(): d} if d else {}
    name = getattr(d, "value", None)
    if not name:
        return None
    try:
        return _parsed(ast.parse(str(name), mode="eval").body) or {("sym", str(name)): 1}
    except (SyntaxError, ValueError, RecursionError):
        return {("sym", str(name)): 1}


def _parsed(node) -> dict | None:
    if isinstance(node, ast.Name):
        return {("sym", node.id): 1}
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return {(): node.value} if node.value else {}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _parsed(node.operand)
        return None if inner is None else _combine("Mul", inner, {(): -1})
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: "Add", ast.Sub: "Sub", ast.Mult: "Mul", ast.FloorDiv: "Div"}
        op = ops.get(type(node.op))
        left, right = _parsed(node.left), _parsed(node.right)
        return None if op is None or left is None or right is None else _combine(op, left, right)
    return None


def _form(entry) -> dict | None:
    if isinstance(entry, int):
        return {(): entry} if entry else {}
    if isinstance(entry, tuple) and entry[0] == "dim":
        _, y, k = entry
        return _dim_form(y.shape[k]) if y.shape is not None else None
    if isinstance(entry, tuple) and entry[0] == "expr":
        p, q = _form(entry[2]), _form(entry[3])
        return None if p is None or q is None else _combine(entry[1], p, q)
    return None


def _combine(op: str, p: dict, q: dict) -> dict | None:
    """p op q in canonical form (None where it is not linear: a product of two sizes, a
    division by a size)."""
    def const_of(f):
        return f.get((), 0) if set(f) <= {()} else None

    if op in ("Add", "Sub"):
        sign = 1 if op == "Add" else -1
        out = dict(p)
        for atom, c in q.items():
            out[atom] = out.get(atom, 0) + sign * c
        return {a: c for a, c in out.items() if c}
    if op == "Mul":
        k = const_of(q) if const_of(q) is not None else const_of(p)
        other = p if const_of(q) is not None else q
        if k is None:
            return None
        return {} if k == 0 else {a: c * k for a, c in other.items()}
    if op == "Div":
        k = const_of(q)
        if k is None or k <= 0:
            return None
        if all(c % k == 0 for c in p.values()):  # (k*a + k*b) // k = a + b
            return {a: c // k for a, c in p.items()}
        return {("floordiv", tuple(sorted(p.items(), key=repr)), k): 1}
    return None
