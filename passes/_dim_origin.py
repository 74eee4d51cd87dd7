"""Where a tensor's size on an axis comes from: followed back through the ops that keep it, so
that two sizes read from different tensors can be proven equal (passes/_shape_read.is_dim)."""

from __future__ import annotations

import onnx_ir as ir

from ._shape_read import allowzero, same_size, target_entries
from ._weights import const

# ops whose output has input 0's shape
_SAME_SHAPE = {"Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "Softmax", "LogSoftmax", "LayerNormalization",
               "Cast", "Identity", "Dropout", "Neg", "Sqrt", "Reciprocal", "Abs", "Exp", "Log", "IsNaN",
               "IsInf", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Clip", "Not", "Floor",
               "Ceil", "Round", "Sign", "Sin", "Cos", "InstanceNormalization", "BatchNormalization",
               "SimplifiedLayerNormalization", "RMSNormalization", "Softplus", "Mish", "Celu"}
# ops whose output keeps input 0's axis 0 (the batch)
_BATCH_KEEP = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
               "LpPool", "GlobalLpPool", "GroupNormalization"}
# elementwise ops with multidirectional broadcasting
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
              "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Mod"}


def dim_origin(v: ir.Value, axis: int, depth: int = 0, memo: dict | None = None) -> tuple:
    """(value, axis) that the size of `v` on `axis` provably is, as far back as it can be followed:
    through ops that keep an axis (elementwise, norms, a conv's batch), Transposes, MatMul's rows
    and columns, Reshapes whose target entry there is a size read from a tensor (or a 0 copying
    it), and broadcasting where every other operand is 1 or absent on that axis, or has the same
    origin. Two sizes with the same origin are equal.

        x [B, 256, 16] -> Reshape([Shape(x)[0], 16, 16, 16]) -> Transpose -> Conv -> y [?, 16, 8, 8]
        dim_origin(y, 0) == (x, 0)

    `memo` holds the answers found during one question (a broadcast asks about each operand, and
    residual blocks would make that exponential in the depth without it).
    """
    memo = {} if memo is None else memo
    walked: list[tuple[int, int]] = []
    v, axis = _origin_walk(v, axis, depth, memo, walked)
    for key in walked:
        memo[key] = (v, axis)
    return v, axis


def _origin_walk(v: ir.Value, axis: int, depth: int, memo: dict, walked: list) -> tuple:
    while depth < 200:
        depth += 1
        key = (id(v), axis)
        if key in memo:
            return memo[key]
        walked.append(key)
        n = v.producer()
        rank = len(v.shape) if v.shape is not None else None
        if n is None or n.domain or not rank:
            return v, axis
        axis %= rank
        ins = [u for u in n.inputs]
        if n.op_type in _SAME_SHAPE and ins and ins[0] is not None and _rank_of(ins[0]) == rank:
            v = ins[0]
        elif n.op_type in _BATCH_KEEP and axis == 0 and ins and ins[0] is not None:
            v = ins[0]
        elif n.op_type == "Transpose":
            perm = list(n.attributes.get_ints("perm", [])) or list(reversed(range(rank)))
            v, axis = ins[0], perm[axis]
        elif n.op_type == "Reshape" and len(ins) > 1:
            entries = target_entries(ins[1])
            e = entries[axis] if entries is not None and len(entries) == rank else None
            if isinstance(e, tuple):
                v, axis = e[1], e[2]
            elif e == 0 and not allowzero(n):
                v = ins[0]
            else:
                return v, axis
        elif n.op_type == "MatMul" and _rank_of(ins[0]) and _rank_of(ins[1]):
            ra, rb = _rank_of(ins[0]), _rank_of(ins[1])
            if axis == rank - 1 and rb >= 2:
                v, axis = ins[1], rb - 1
            elif axis == rank - 2 and ra >= 2:
                v, axis = ins[0], ra - 2
            else:
                nxt = _broadcast_source([(ins[0], ra - 2), (ins[1], rb - 2)], rank - 2, axis, depth, memo)
                if nxt is None:
                    return v, axis
                v, axis = nxt
        elif n.op_type in _BROADCAST:
            nxt = _broadcast_source([(u, _rank_of(u)) for u in ins if u is not None], rank, axis, depth, memo)
            if nxt is None:
                return v, axis
            v, axis = nxt
        elif n.op_type == "Unsqueeze" and len(ins) > 1 and const(ins[1]) is not None:
            added = sorted(int(a) % rank for a in const(ins[1]).reshape(-1))
            if axis in added:
                return v, axis
            v, axis = ins[0], axis - sum(a < axis for a in added)
        elif n.op_type == "Gather" and _rank_of(ins[0]) and _rank_of(ins[1]) is not None:
            g, ri = n.attributes.get_int("axis", 0) % _rank_of(ins[0]), _rank_of(ins[1])
            v, axis = (ins[0], axis) if axis < g else (ins[1], axis - g) if axis < g + ri else (ins[0], axis - ri + 1)
        elif n.op_type.startswith("Reduce") and ins and _rank_of(ins[0]):
            r_in = _rank_of(ins[0])
            axes = n.attributes.get_ints("axes", None)
            if axes is None and len(ins) > 1 and ins[1] is not None:
                axes = const(ins[1]).reshape(-1).tolist() if const(ins[1]) is not None else None
            if not axes:  # every axis reduced (or axes read at run time)
                return v, axis
            axes = sorted(int(a) % r_in for a in axes)
            if n.attributes.get_int("keepdims", 1):
                if axis in axes:
                    return v, axis
                v = ins[0]
            else:
                kept = [a for a in range(r_in) if a not in axes]
                v, axis = ins[0], kept[axis]
        elif n.op_type in ("Range", "ConstantOfShape", "Expand"):
            nxt = _entry_source(n, rank, axis, depth, memo)
            if nxt is None:
                return v, axis
            v, axis = nxt
        else:
            return v, axis
    return v, axis


def same_origin(a: tuple, b: tuple) -> bool:
    """Two origins (value, axis) that are provably the same size: one place, or named alike."""
    return (a[0] is b[0] and a[1] == b[1]) or same_size(a[0].shape[a[1]], b[0].shape[b[1]])


def _entry_source(n: ir.Node, rank: int, axis: int, depth: int, memo: dict):
    """Where the size of axis `axis` of a Range(0, n, 1), ConstantOfShape(shape) or
    Expand(x, shape) output comes from: a size read from a tensor that the shape entries hold
    (for Expand, broadcast with x)."""
    if n.op_type == "Range":
        start, delta = const(n.inputs[0]), const(n.inputs[2])
        limit = target_entries(n.inputs[1])
        if start is None or delta is None or int(start.reshape(-1)[0]) != 0 or int(delta.reshape(-1)[0]) != 1 \
                or not limit or len(limit) != 1 or not isinstance(limit[0], tuple):
            return None
        return dim_origin(limit[0][1], limit[0][2], depth, memo)
    entries = target_entries(n.inputs[0 if n.op_type == "ConstantOfShape" else 1])
    if entries is None or len(entries) > rank:
        return None
    k = axis - (rank - len(entries))
    e = entries[k] if k >= 0 else 1
    origins = []
    if isinstance(e, tuple):
        origins.append(dim_origin(e[1], e[2], depth, memo))
    elif e != 1:
        return None
    if n.op_type == "Expand":
        x, rx = n.inputs[0], _rank_of(n.inputs[0])
        if rx is None:
            return None
        kx = axis - (rank - rx)
        if kx >= 0 and x.shape[kx] != 1:
            origins.append(dim_origin(x, kx, depth, memo))
    if not origins or not all(same_origin(o, origins[0]) for o in origins):
        return None
    return origins[0]


def _rank_of(v: ir.Value | None) -> int | None:
    return len(v.shape) if v is not None and v.shape is not None else None


def _broadcast_source(operands, rank: int, axis: int, depth: int, memo: dict):
    """The (operand, axis) whose size a broadcast output has on `axis` (right-aligned), if every
    other operand is 1 there, has no such axis, or has the same origin."""
    found = []
    for u, r in operands:
        if r is None:
            return None
        k = axis - (rank - r)
        if k < 0 or u.shape[k] == 1:
            continue
        found.append((u, k))
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    origins = [dim_origin(u, k, depth, memo) for u, k in found]
    if all(same_origin(o, origins[0]) for o in origins):
        return origins[0]
    return None
