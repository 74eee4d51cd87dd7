"""MaxPool, AveragePool, global pools, LpPool -> nn pooling layers."""

from __future__ import annotations

import torch
from torch import nn

from .. import runtime, runtime_pool
from ..registry import Unsupported, converter
from ._common import full_pads, window

_MAX = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_GAVG = {3: nn.AdaptiveAvgPool1d, 4: nn.AdaptiveAvgPool2d, 5: nn.AdaptiveAvgPool3d}
_GMAX = {3: nn.AdaptiveMaxPool1d, 4: nn.AdaptiveMaxPool2d, 5: nn.AdaptiveMaxPool3d}


def _fits_torch(win) -> bool:
    """torch pools take symmetric padding of at most half the (dilated) kernel."""
    return win.symmetric and all(
        p <= ((k - 1) * d + 1) // 2 for p, k, d in zip(win.padding, win.kernel, win.dilations)
    )


@converter("MaxPool")
def max_pool(ctx):
    if ctx.output_used(1):
        raise Unsupported("the Indices output of MaxPool")
    if ctx.attr("storage_order", 0):
        raise Unsupported("storage_order=1")
    kernel = list(ctx.attr("kernel_shape"))
    n = len(kernel)
    if n not in _MAX:
        raise Unsupported(f"{n}-D max pooling")
    win = window(ctx, kernel)
    ceil = bool(ctx.attr("ceil_mode", 0))
    x = ctx.x(0)
    padding = 0
    if win.pads is None:
        x = ctx.call(runtime.pad_same, x, kernel, win.strides, win.dilations, win.same_upper, float("-inf"))
    elif _fits_torch(win):
        padding = win.padding
    else:
        x = ctx.call(runtime.onnx_pad, x, full_pads(win.pads), "constant", float("-inf"))
    return ctx.call_module(_MAX[n], x, kernel_size=tuple(kernel), stride=tuple(win.strides),
                           padding=padding, dilation=tuple(win.dilations), ceil_mode=ceil)


@converter("AveragePool")
def average_pool(ctx):
    kernel = list(ctx.attr("kernel_shape"))
    n = len(kernel)
    if n not in _AVG:
        raise Unsupported(f"{n}-D average pooling")
    win = window(ctx, kernel)
    if any(d != 1 for d in win.dilations):
        raise Unsupported("dilated average pooling (torch has none)")
    ceil = bool(ctx.attr("ceil_mode", 0))
    include_pad = bool(ctx.attr("count_include_pad", 0))
    x = ctx.x(0)
    if win.pads is not None and _fits_torch(win):
        return ctx.call_module(_AVG[n], x, kernel_size=tuple(kernel), stride=tuple(win.strides),
                               padding=win.padding, ceil_mode=ceil, count_include_pad=include_pad)
    if win.pads is None:
        if not include_pad:  # TF's AvgPool SAME at a free size: the divisor from the live size
            return ctx.call(runtime_pool.avg_pool_same_exclude_pad, x, tuple(kernel), tuple(win.strides),
                            win.same_upper, ceil)
        x = ctx.call(runtime.pad_same, x, kernel, win.strides, win.dilations, win.same_upper)
    elif include_pad:
        x = ctx.call(runtime.onnx_pad, x, full_pads(win.pads))
    else:
        return ctx.call(runtime.avg_pool_exclude_pad, x, tuple(kernel), tuple(win.strides),
                        list(win.pads), ceil)
    return ctx.call_module(_AVG[n], x, kernel_size=tuple(kernel), stride=tuple(win.strides),
                           padding=0, ceil_mode=ceil, count_include_pad=True)


def _global(ctx, modules, reduce):
    rank = ctx.rank(0)
    if rank in modules:
        return ctx.call_module(modules[rank], ctx.x(0), output_size=1)
    if rank is None:
        raise Unsupported("global pooling of an input of unknown rank")
    return ctx.call(reduce, ctx.x(0), tuple(range(2, rank)), keepdim=True)


@converter("GlobalAveragePool")
def global_average_pool(ctx):
    return _global(ctx, _GAVG, torch.mean)


@converter("GlobalMaxPool")
def global_max_pool(ctx):
    return _global(ctx, _GMAX, torch.amax)


@converter("LpPool")
def lp_pool(ctx):
    kernel = list(ctx.attr("kernel_shape"))
    win = window(ctx, kernel)
    if len(kernel) not in (1, 2) or any(d != 1 for d in win.dilations) or win.pads is None or any(win.pads):
        raise Unsupported("LpPool with padding, dilation or more than 2 spatial dims")
    cls = nn.LPPool1d if len(kernel) == 1 else nn.LPPool2d
    return ctx.call_module(cls, ctx.x(0), norm_type=float(ctx.attr("p", 2)),
                           kernel_size=tuple(kernel), stride=tuple(win.strides),
                           ceil_mode=bool(ctx.attr("ceil_mode", 0)))
