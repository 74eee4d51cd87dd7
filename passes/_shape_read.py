"""Reading a Reshape's target shape before run time, for passes that rewrite Reshapes."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ._weights import const

# An entry is an int (-1 and 0 keep their Reshape meaning), ("dim", value, axis) for a size read
# from a tensor at run time, or None when it cannot be told.


def target_entries(v: ir.Value | None, depth: int = 0, arithmetic: bool = False) -> list | None:
    """The entries of a 1-D int64 shape value as far as they are known before run time: ints
    for constants, ("dim", x, axis) for `Shape(x)[axis]`, None where unknown. Follows Shape (with
    start/end), Slice with constant bounds, Gather with constant indices, Concat, Unsqueeze,
    Squeeze, Cast and Identity; with `arithmetic`, Mul/Div/Add/Sub of known ints too (the Keras
    exporter's reading). None if the value is none of these."""
    if v is None or depth > 20:
        return None
    c = const(v)
    if c is not None:
        return [int(x) for x in c.reshape(-1)]
    n = v.producer()
    if n is None or n.domain:
        return None

    def arg(i):
        return target_entries(n.inputs[i], depth + 1, arithmetic) if i < len(n.inputs) else None

    if n.op_type == "Shape":
        x = n.inputs[0]
        if x.shape is None:
            return None
        rank = len(x.shape)
        start, end = n.attributes.get_int("start", 0), n.attributes.get_int("end", rank)
        return [d if isinstance(d, int) else ("dim", x, i) for i, d in list(enumerate(x.shape))[start:end]]
    if n.op_type in ("Unsqueeze", "Squeeze", "Cast", "Identity"):
        return arg(0)
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
    if arithmetic and n.op_type in _ARITHMETIC:
        return _elementwise(_ARITHMETIC[n.op_type], arg(0), arg(1))
    return None


_ARITHMETIC = {"Mul": lambda p, q: p * q, "Div": lambda p, q: p // q, "Add": lambda p, q: p + q,
               "Sub": lambda p, q: p - q}


def _elementwise(f, x: list | None, y: list | None) -> list | None:
    """f over two entry lists (one may be a single entry, broadcast); None where either is unknown."""
    if x is None or y is None:
        return None
    if len(x) != len(y):
        if len(x) == 1:
            x = x * len(y)
        elif len(y) == 1:
            y = y * len(x)
        else:
            return None
    return [f(p, q) if isinstance(p, int) and isinstance(q, int) else None for p, q in zip(x, y)]


def is_dim(entry, x: ir.Value, axis: int, position: int | None = None, allowzero: bool = False) -> bool:
    """Whether a target entry provably is x's size on `axis`: read from x (or an equal static
    size), or a 0 at the same position of a Reshape of x (copy, unless allowzero)."""
    d = x.shape[axis] if x.shape is not None else None
    if isinstance(entry, tuple):
        _, y, k = entry
        if y is x and k % len(x.shape) == axis % len(x.shape):
            return True
        other = y.shape[k] if y.shape is not None else None
        return same_size(other, d)
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
