"""Reductions, ArgMax/ArgMin and TopK -> torch reductions (axes as input from opset 18)."""

from __future__ import annotations

import operator

import torch

from .. import runtime
from ..registry import converter


def _axes(ctx):
    if ctx.opset >= 18 or ctx.node.op_type == "ReduceSum":
        if not ctx.has_input(1):
            return []
        return ctx.ints_or_runtime(1)
    return list(ctx.attr("axes", []))


def _reduction(op_type, fn, pre=None, post=None):
    def convert(ctx):
        axes = _axes(ctx)
        keep = ctx.attr("keepdims", 1)
        if not isinstance(axes, list):  # axes known only at run time
            return _post(ctx, ctx.call(runtime.onnx_reduce, fn.__name__, _pre(ctx, ctx.x(0)), axes, keep,
                                       ctx.attr("noop_with_empty_axes", 0)))
        if not axes and ctx.attr("noop_with_empty_axes", 0):
            return ctx.x(0)
        x = _pre(ctx, ctx.x(0))
        if fn in (torch.sum, torch.mean, torch.amax, torch.amin, torch.logsumexp) and axes:
            y = ctx.call(fn, x, tuple(axes), keepdim=bool(keep))
        elif fn in (torch.sum, torch.mean, torch.amax, torch.amin) and ctx.rank(0) is not None:
            y = ctx.call(fn, x, tuple(range(ctx.rank(0))), keepdim=bool(keep))
        else:
            y = ctx.call(runtime.onnx_reduce, fn.__name__, x, axes, keep)
        return _post(ctx, y)

    def _pre(ctx, x):
        return ctx.call(pre, x) if pre is not None else x

    def _post(ctx, y):
        return ctx.call(post, y) if post is not None else y

    convert.__name__ = op_type.lower()
    converter(op_type)(convert)


_reduction("ReduceSum", torch.sum)
_reduction("ReduceMean", torch.mean)
_reduction("ReduceMax", torch.amax)
_reduction("ReduceMin", torch.amin)
_reduction("ReduceProd", torch.prod)
_reduction("ReduceLogSumExp", torch.logsumexp)
_reduction("ReduceSumSquare", torch.sum, pre=torch.square)
_reduction("ReduceL1", torch.sum, pre=torch.abs)
_reduction("ReduceL2", torch.sum, pre=torch.square, post=torch.sqrt)
_reduction("ReduceLogSum", torch.sum, post=torch.log)


def _arg(op_type, fn):
    def convert(ctx):
        return ctx.call(runtime.onnx_arg, fn.__name__, ctx.x(0), ctx.attr("axis", 0),
                        ctx.attr("keepdims", 1), ctx.attr("select_last_index", 0))

    converter(op_type)(convert)


_arg("ArgMax", torch.argmax)
_arg("ArgMin", torch.argmin)


@converter("TopK", since=10)
def topk(ctx):
    k = ctx.ints_or_runtime(1)
    k = k[0] if isinstance(k, list) else ctx.call(operator.getitem, k, 0)
    # a stable sort, not torch.topk: ONNX puts the lower index first among equal values
    parts = ctx.call(runtime.onnx_topk, ctx.x(0), k, ctx.attr("axis", -1), ctx.attr("largest", 1))
    return ctx.split(parts, 2)
