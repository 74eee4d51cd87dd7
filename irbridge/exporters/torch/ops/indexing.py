"""Indexing ops: GatherND, ScatterND, ScatterElements, OneHot, NonZero, Compress, EyeLike, ...

Exact torch calls where one exists (torch.scatter, torch.nonzero, torch.linalg.det), else a
helper from runtime_index.py that model.py carries.
"""

from __future__ import annotations

import onnx_ir as ir
import torch

from .. import runtime_index as rt
from ..builder import TORCH_DTYPES
from ..registry import Unsupported, converter


def _text(v, default=None):
    v = default if v is None else v
    return v.decode() if isinstance(v, bytes) else v


@converter("GatherND", since=12)
def gather_nd(ctx):
    return ctx.call(rt.gather_nd, ctx.x(0), ctx.x(1), ctx.attr("batch_dims", 0))


@converter("ScatterND", since=11)
def scatter_nd(ctx):
    return ctx.call(rt.scatter_nd, ctx.x(0), ctx.x(1), ctx.x(2), _text(ctx.attr("reduction"), "none"))


@converter("ScatterElements", since=11)
def scatter_elements(ctx):
    return ctx.call(rt.scatter_elements, ctx.x(0), ctx.x(1), ctx.x(2), ctx.attr("axis", 0),
                    _text(ctx.attr("reduction"), "none"))


@converter("Scatter", since=9)
def scatter(ctx):
    return ctx.call(rt.scatter_elements, ctx.x(0), ctx.x(1), ctx.x(2), ctx.attr("axis", 0))


@converter("OneHot", since=9)
def one_hot(ctx):
    return ctx.call(rt.one_hot, ctx.x(0), ctx.x(1), ctx.x(2), ctx.attr("axis", -1))


@converter("NonZero", since=9)
def non_zero(ctx):
    return ctx.method("t", ctx.call(torch.nonzero, ctx.x(0)))


@converter("Compress", since=9)
def compress(ctx):
    return ctx.call(rt.compress, ctx.x(0), ctx.x(1), ctx.attr("axis", None))


@converter("EyeLike", since=9)
def eye_like(ctx):
    to = ctx.attr("dtype", None)
    dtype = None if to is None else TORCH_DTYPES.get(ir.DataType(to))
    if to is not None and dtype is None:
        raise Unsupported(f"EyeLike of type {ir.DataType(to).name}")
    return ctx.call(rt.eye_like, ctx.x(0), ctx.attr("k", 0), dtype)


@converter("Det", since=11)
def det(ctx):
    return ctx.call(torch.linalg.det, ctx.x(0))


@converter("ReverseSequence", since=10)
def reverse_sequence(ctx):
    return ctx.call(rt.reverse_sequence, ctx.x(0), ctx.x(1), ctx.attr("batch_axis", 1), ctx.attr("time_axis", 0))


@converter("CumProd", since=26)
def cumprod(ctx):
    return ctx.call(rt.cumprod, ctx.x(0), ctx.ints_or_runtime(1), ctx.attr("exclusive", 0), ctx.attr("reverse", 0))


@converter("LpNormalization")
def lp_normalization(ctx):
    p = ctx.attr("p", 2)
    if p not in (1, 2):
        raise Unsupported(f"LpNormalization with p={p}")
    return ctx.call(rt.lp_normalize, ctx.x(0), ctx.attr("axis", -1), p)


@converter("MeanVarianceNormalization", since=13)
def mean_variance_normalization(ctx):
    return ctx.call(rt.mean_variance_normalize, ctx.x(0), tuple(ctx.attr("axes", [0, 2, 3])))
