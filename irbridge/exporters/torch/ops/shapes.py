"""Shape arithmetic on `Dims` (shape values held as Python lists of ints and `x.size(k)`).

TorchScript exports compute every dynamic size in the graph: Shape -> Gather -> Unsqueeze ->
Concat -> Reshape. Followed op by op, that reads `onnx_shape(x)[1].unsqueeze(0)...tolist()`;
held as Dims it becomes `x.reshape(batch, sequence, 4, 8)`, live at every size. Each function
here returns Dims, or None when its inputs are not shape values (the converter then emits the
tensor op as usual). The converters in tensor.py and elementwise.py call these first.
"""

from __future__ import annotations

import operator

import onnx_ir as ir
import torch
import torch.fx as fx

from ..builder import TORCH_DTYPES, Dims

_INT = (torch.int64, torch.int32)


def _any_live(ctx, *indices) -> bool:
    return any(ctx.is_dims(i) for i in indices)


def shape(ctx) -> Dims | None:
    rank = ctx.rank(0)
    if rank is None:
        return None
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    dims = list(range(rank))[slice(start, end)]
    return Dims([ctx.dim(0, k) for k in dims])


def gather(ctx) -> Dims | None:
    data, idx = ctx.dims(0), ctx.dims(1)
    if not ctx.is_dims(0) or idx is None or data.scalar or ctx.attr("axis", 0) != 0:
        return None
    n = len(data.items)
    if any(not isinstance(i, int) or not -n <= i < n for i in idx.items):
        return None
    return Dims([data.items[i] for i in idx.items], scalar=idx.scalar, dtype=data.dtype)


def unsqueeze(ctx) -> Dims | None:
    d = ctx.dims(0)
    if not ctx.is_dims(0) or not d.scalar or ctx.ints(1) not in ([0], [-1]):
        return None
    return Dims(list(d.items), dtype=d.dtype)


def squeeze(ctx) -> Dims | None:
    d = ctx.dims(0)
    if not ctx.is_dims(0) or d.scalar or len(d.items) != 1:
        return None
    if ctx.has_input(1) and ctx.ints(1) not in ([0], [-1]):
        return None
    return Dims(list(d.items), scalar=True, dtype=d.dtype)


def concat(ctx) -> Dims | None:
    parts = [ctx.dims(i) for i in range(ctx.num_inputs)]
    if not _any_live(ctx, *range(ctx.num_inputs)) or any(p is None or p.scalar for p in parts):
        return None
    return Dims([i for p in parts for i in p.items], dtype=parts[0].dtype)


def reshape(ctx) -> Dims | None:
    """A shape value reshaped to 1-D ([-1] or [n]) stays what it was."""
    d, to = ctx.dims(0), ctx.ints(1)
    if not ctx.is_dims(0) or to is None or len(to) != 1 or to[0] not in (-1, len(d.items)):
        return None
    return Dims(list(d.items), dtype=d.dtype)


def slice_(ctx) -> Dims | None:
    d = ctx.dims(0)
    starts, ends = ctx.ints(1), ctx.ints(2)
    axes = ctx.ints(3) if ctx.has_input(3) else [0]
    steps = ctx.ints(4) if ctx.has_input(4) else [1]
    if not ctx.is_dims(0) or d.scalar or starts is None or ends is None or axes not in ([0], [-1]) \
            or steps is None or steps[0] <= 0:
        return None
    return Dims(d.items[slice(starts[0], ends[0], steps[0])], dtype=d.dtype)


def cast(ctx) -> Dims | None:
    d = ctx.dims(0)
    to = TORCH_DTYPES.get(ir.DataType(ctx.attr("to")))
    if not ctx.is_dims(0) or to not in _INT or d.dtype not in _INT:
        return None
    return Dims(list(d.items), d.scalar, to)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def arithmetic(ctx, op_type: str) -> Dims | None:
    """Add, Sub, Mul, Div of shape values (with numpy broadcasting of one-item operands)."""
    a, b = ctx.dims(0), ctx.dims(1)
    if not _any_live(ctx, 0, 1) or a is None or b is None or a.dtype not in _INT:
        return None
    n = max(len(a.items), len(b.items))
    if {len(a.items), len(b.items)} - {1, n}:
        return None
    builder = ctx.builder
    out = []
    for k in range(n):
        x, y = a.items[k % len(a.items)], b.items[k % len(b.items)]
        r = _combine(builder, op_type, x, y)
        if r is None:
            return None
        out.append(r)
    return Dims(out, scalar=a.scalar and b.scalar, dtype=a.dtype)


def _combine(builder, op_type, x, y):
    if isinstance(x, int) and isinstance(y, int):
        if op_type == "Div":
            return None if y == 0 else _trunc_div(x, y)
        return {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul}[op_type](x, y)
    nonneg = builder.nonneg
    if (op_type == "Mul" and y == 1) or (op_type in ("Add", "Sub") and y == 0) \
            or (op_type == "Div" and y == 1):
        return x
    if isinstance(x, int) and ((op_type == "Mul" and x == 1) or (op_type == "Add" and x == 0)):
        return y
    if op_type == "Div":  # sizes are >= 0: floor division is ONNX's truncation there
        if not (isinstance(y, int) and y > 0 and x in nonneg):
            return None
        fn = operator.floordiv
    else:
        fn = {"Add": operator.add, "Sub": operator.sub, "Mul": operator.mul}[op_type]
    node = builder.create("call_function", fn, (x, y), {}, None)
    if op_type != "Sub" and all(v in nonneg or (isinstance(v, int) and v >= 0) for v in (x, y)):
        nonneg.add(node)
    return node


def equal(ctx) -> Dims | None:
    """Equal of shape values where the answer is known now (a size is never negative)."""
    a, b = ctx.dims(0), ctx.dims(1)
    if not _any_live(ctx, 0, 1) or a is None or b is None:
        return None
    n = max(len(a.items), len(b.items))
    if {len(a.items), len(b.items)} - {1, n}:
        return None
    out = []
    for k in range(n):
        x, y = a.items[k % len(a.items)], b.items[k % len(b.items)]
        if isinstance(x, fx.Node) and isinstance(y, int):
            x, y = y, x
        if isinstance(y, fx.Node):
            if x is y:
                out.append(True)
            elif isinstance(x, int) and x < 0 and y in ctx.builder.nonneg:
                out.append(False)
            else:
                return None
        else:
            out.append(x == y)
    return Dims(out, scalar=a.scalar and b.scalar, dtype=torch.bool)


def where(ctx) -> Dims | None:
    cond, a, b = ctx.dims(0), ctx.dims(1), ctx.dims(2)
    if not _any_live(ctx, 0, 1, 2) or None in (cond, a, b) or not cond.static:
        return None
    n = max(len(cond.items), len(a.items), len(b.items))
    if {len(cond.items), len(a.items), len(b.items)} - {1, n}:
        return None
    items = [a.items[k % len(a.items)] if cond.items[k % len(cond.items)] else b.items[k % len(b.items)]
             for k in range(n)]
    return Dims(items, scalar=cond.scalar and a.scalar and b.scalar, dtype=a.dtype)


def scalar(ctx, i: int):
    """Input i as one int or graph scalar (a 0-D or one-item shape value), else None."""
    d = ctx.dims(i)
    return d.items[0] if d is not None and len(d.items) == 1 else None
