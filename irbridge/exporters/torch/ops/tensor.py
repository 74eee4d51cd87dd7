"""Shape and data-movement ops: Reshape, Flatten, Transpose, Concat, Split, Slice, Gather, Pad, ..."""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import nn

from .. import runtime
from ..builder import TORCH_DTYPES, _to_torch
from ..registry import Unsupported, converter
from . import shapes


@converter("Identity")
def identity(ctx):
    return ctx.x(0)


@converter("Dropout")
def dropout(ctx):
    if ctx.has_input(2) and (ctx.const(2) is None or bool(ctx.const(2))):
        raise Unsupported("Dropout in training mode")
    ratio = ctx.const(1)
    y = ctx.call_module(nn.Dropout, ctx.x(0), p=float(ratio) if ratio is not None else 0.5)
    if ctx.output_used(1):
        return y, ctx.call(torch.ones_like, ctx.x(0), dtype=torch.bool)
    return y


@converter("Constant")
def constant(ctx):
    for name in ("value", "value_float", "value_int", "value_floats", "value_ints"):
        v = ctx.attr(name)
        if v is not None:
            arr = np.asarray(v, dtype=np.float32 if "float" in name else None)
            if name == "value_int" or name == "value_ints":
                arr = arr.astype(np.int64)
            ctx.builder.root.register_buffer(attr := ctx.builder.fresh(ctx.out_name()), _to_torch(arr))
            return ctx.builder.graph.get_attr(attr)
    raise Unsupported("Constant of a non-tensor kind")


@converter("Cast", since=6)
def cast(ctx):
    if (d := shapes.cast(ctx)) is not None:
        return d
    to = ctx.attr("to")
    import onnx_ir as ir

    dtype = TORCH_DTYPES.get(ir.DataType(to))
    if dtype is None:
        raise Unsupported(f"Cast to {ir.DataType(to).name}")
    return ctx.method("to", ctx.x(0), dtype)


@converter("CastLike")
def cast_like(ctx):
    return ctx.method("type_as", ctx.x(0), ctx.x(1))


@converter("Reshape", since=5)
def reshape(ctx):
    if (d := shapes.reshape(ctx)) is not None:
        return d
    shape = ctx.ints(1)
    allowzero = ctx.attr("allowzero", 0)
    live = ctx.sizes(1) if ctx.is_dims(1) else None
    if live is not None:  # x.reshape(batch, sequence, 4, 8): 0 copies x's dim (unless allowzero)
        if not allowzero:
            live = [ctx.dim(0, i) if isinstance(s, int) and s == 0 else s for i, s in enumerate(live)]
        return ctx.method("reshape", ctx.x(0), *live)
    if shape is None:
        return ctx.call(runtime.onnx_reshape, ctx.x(0), ctx.method("tolist", ctx.x(1)), allowzero)
    if 0 in shape and not allowzero:
        in_shape = ctx.shape(0)
        if in_shape is None:
            return ctx.call(runtime.onnx_reshape, ctx.x(0), shape, allowzero)
        shape = [ctx.dim(0, i) if s == 0 else s for i, s in enumerate(shape)]
    return ctx.method("reshape", ctx.x(0), *shape)


@converter("Flatten")
def flatten(ctx):
    axis = ctx.attr("axis", 1)
    rank = ctx.rank(0)
    if axis == 1 or (rank is not None and axis == 1 - rank):
        return ctx.call_module(nn.Flatten, ctx.x(0))
    if rank is None:
        return ctx.call(runtime.onnx_flatten, ctx.x(0), axis)
    axis = axis + rank if axis < 0 else axis
    if axis == 0:
        return ctx.method("reshape", ctx.x(0), 1, -1)
    if axis == rank:
        return ctx.method("reshape", ctx.x(0), -1, 1)
    return ctx.method("flatten", ctx.method("flatten", ctx.x(0), 0, axis - 1), 1)


@converter("Transpose")
def transpose(ctx):
    perm = ctx.attr("perm")
    if perm is None:
        rank = ctx.rank(0)
        if rank is None:
            raise Unsupported("Transpose without perm of an input of unknown rank")
        perm = list(reversed(range(rank)))
    return ctx.method("permute", ctx.x(0), *perm)


@converter("Concat")
def concat(ctx):
    if (d := shapes.concat(ctx)) is not None:
        return d
    return ctx.call(torch.cat, [ctx.x(i) for i in range(ctx.num_inputs) if ctx.has_input(i)],
                    dim=ctx.attr("axis"))


@converter("Split", since=13)
def split(ctx):
    axis = ctx.attr("axis", 0)
    n = len(ctx.node.outputs)
    sizes = ctx.ints_or_runtime(1) if ctx.has_input(1) else None
    parts = ctx.call(runtime.onnx_split, ctx.x(0), sizes if sizes is not None else n, axis)
    return ctx.split(parts, n)


@converter("Squeeze", since=13)
def squeeze(ctx):
    if (d := shapes.squeeze(ctx)) is not None:
        return d
    if not ctx.has_input(1):
        return ctx.call(runtime.onnx_squeeze, ctx.x(0))
    axes = ctx.ints_or_runtime(1)
    if isinstance(axes, list) and len(axes) == 1 and axes[0] >= 0:
        return ctx.method("squeeze", ctx.x(0), axes[0])
    return ctx.call(runtime.onnx_squeeze, ctx.x(0), axes)


@converter("Unsqueeze", since=13)
def unsqueeze(ctx):
    if (d := shapes.unsqueeze(ctx)) is not None:
        return d
    axes = ctx.ints_or_runtime(1)
    if isinstance(axes, list) and len(axes) == 1 and axes[0] >= 0:
        return ctx.method("unsqueeze", ctx.x(0), axes[0])
    return ctx.call(runtime.onnx_unsqueeze, ctx.x(0), axes)


@converter("Slice", since=10)
def slice_(ctx):
    if (d := shapes.slice_(ctx)) is not None:
        return d
    starts, ends = ctx.ints(1), ctx.ints(2)
    if ctx.is_dims(1) or ctx.is_dims(2):  # bounds from shape values: x[:, :sequence]
        starts, ends = ctx.sizes(1), ctx.sizes(2)
    axes = ctx.ints(3) if ctx.has_input(3) else None
    steps = ctx.ints(4) if ctx.has_input(4) else None
    if starts is None or ends is None or (ctx.has_input(3) and axes is None) or (ctx.has_input(4) and steps is None):
        args = [ctx.ints_or_runtime(i) if ctx.has_input(i) else None for i in range(1, 5)]
        return ctx.call(runtime.onnx_slice, ctx.x(0), *args)
    rank = ctx.rank(0)
    if rank is not None and (steps is None or all(s > 0 for s in steps)):
        axes = list(range(len(starts))) if axes is None else [a % rank for a in axes]
        index = [slice(None)] * (max(axes) + 1)
        for a, s, e, st in zip(axes, starts, ends, steps or [1] * len(starts)):
            index[a] = slice(_clip(s), _clip(e), None if st == 1 else st)
        return ctx.call(operator.getitem, ctx.x(0), tuple(index))
    return ctx.call(runtime.onnx_slice, ctx.x(0), starts, ends, axes, steps)


def _clip(i):
    """ONNX uses INT64 extremes for 'to the end'; Python slices say that with None."""
    if not isinstance(i, int):
        return i  # a size computed at run time
    if i >= 2**31 - 1:
        return None
    return max(i, -(2**31))


@converter("Gather", since=13)
def gather(ctx):
    if (d := shapes.gather(ctx)) is not None:
        return d
    axis = ctx.attr("axis", 0)
    table = ctx.const(0)
    if table is not None and table.ndim == 2 and table.dtype.kind == "f" and axis == 0 \
            and ctx.const(1) is None and ctx.dtype(1) in (torch.int64, torch.int32):
        # a lookup table: what a person writes is nn.Embedding (which rejects the negative
        # indices ONNX would count from the end: an error, never a wrong row)
        return ctx.call_module(nn.Embedding, ctx.x(1), params={"weight": table},
                               num_embeddings=table.shape[0], embedding_dim=table.shape[1])
    idx = ctx.const(1)
    if idx is not None and idx.ndim == 0 and idx >= 0:
        return ctx.method("select", ctx.x(0), axis, int(idx))
    rank = ctx.rank(0)
    if rank is not None and ctx.dtype(1) in (torch.int64, torch.int32):
        # x[:, idx]: torch's indexing by one index tensor is ONNX Gather (negative indices too)
        axis = axis + rank if axis < 0 else axis
        return ctx.call(operator.getitem, ctx.x(0), (slice(None),) * axis + (ctx.x(1),) if axis else ctx.x(1))
    return ctx.call(runtime.onnx_gather, ctx.x(0), ctx.x(1), axis)


@converter("GatherElements", since=13)
def gather_elements(ctx):
    return ctx.call(runtime.onnx_gather_elements, ctx.x(0), ctx.x(1), ctx.attr("axis", 0))


@converter("Shape", since=15)
def shape(ctx):
    if (d := shapes.shape(ctx)) is not None:
        return d
    return ctx.call(runtime.onnx_shape, ctx.x(0), ctx.attr("start", 0), ctx.attr("end", None))


@converter("Size")
def size(ctx):
    return ctx.call(torch.tensor, ctx.method("numel", ctx.x(0)), dtype=torch.long)


@converter("Expand", since=8)
def expand(ctx):
    shape = ctx.sizes(1)
    rank = ctx.rank(0)
    if shape is not None and rank is not None:
        # ONNX broadcasts both ways; torch's expand keeps a dim given as -1
        shape = [-1] * (rank - len(shape)) + list(shape)
        lead, x_shape = len(shape) - rank, ctx.shape(0)
        shape = [-1 if k >= lead and ((isinstance(s, int) and s == 1) or (x_shape[k - lead] or 1) > 1)
                 else s for k, s in enumerate(shape)]
        return ctx.method("expand", ctx.x(0), *shape)
    if shape is None:
        return ctx.call(runtime.onnx_expand, ctx.x(0), ctx.method("tolist", ctx.x(1)))
    return ctx.call(runtime.onnx_expand, ctx.x(0), shape)


@converter("Tile", since=13)
def tile(ctx):
    reps = ctx.sizes(1)
    if reps is None:
        return ctx.method("repeat", ctx.x(0), ctx.ints_or_runtime(1))
    return ctx.method("repeat", ctx.x(0), *reps)


@converter("Pad", since=18)
def pad(ctx):
    mode = ctx.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = ctx.operand(2) if ctx.has_input(2) else 0.0
    axes = ctx.ints_or_runtime(3) if ctx.has_input(3) else None
    return ctx.call(runtime.onnx_pad, ctx.x(0), ctx.ints_or_runtime(1), mode, value, axes)


@converter("ConstantOfShape", since=9)
def constant_of_shape(ctx):
    value = ctx.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    dtype = torch.from_numpy(value.copy()).dtype
    shape = ctx.sizes(0)
    shape_arg = shape if shape is not None else ctx.method("tolist", ctx.x(0))
    return ctx.call(torch.full, shape_arg, value[0].item(), dtype=dtype)


@converter("Range", since=11)
def range_(ctx):
    start, limit, delta = (shapes.scalar(ctx, i) for i in range(3))
    dtype = ctx.dtype(0)
    if _all_given(start, limit, delta) and dtype in (torch.int64, torch.int32) and _any_live(ctx):
        if start == 0 and delta == 1:
            return ctx.call(torch.arange, limit, dtype=dtype)
        return ctx.call(torch.arange, start, limit, delta, dtype=dtype)
    return ctx.call(runtime.onnx_range, ctx.x(0), ctx.x(1), ctx.x(2))


@converter("DepthToSpace", since=13)
def depth_to_space(ctx):
    mode = ctx.attr("mode", "DCR")
    return ctx.call(runtime.depth_to_space, ctx.x(0), ctx.attr("blocksize"),
                    mode.decode() if isinstance(mode, bytes) else mode)


@converter("SpaceToDepth", since=13)
def space_to_depth(ctx):
    mode = ctx.attr("mode", "DCR")
    return ctx.call(runtime.space_to_depth, ctx.x(0), ctx.attr("blocksize"),
                    mode.decode() if isinstance(mode, bytes) else mode)


@converter("Trilu")
def trilu(ctx):
    k = ctx.operand(1) if ctx.has_input(1) else 0
    fn = torch.triu if ctx.attr("upper", 1) else torch.tril
    return ctx.call(fn, ctx.x(0), k)


@converter("CumSum", since=14)
def cumsum(ctx):
    return ctx.call(runtime.onnx_cumsum, ctx.x(0), ctx.ints_or_runtime(1), ctx.attr("exclusive", 0),
                    ctx.attr("reverse", 0))


def _all_given(*items) -> bool:
    return all(i is not None and not isinstance(i, bool) for i in items)


def _any_live(ctx) -> bool:
    return any(ctx.is_dims(i) for i in range(ctx.num_inputs))
