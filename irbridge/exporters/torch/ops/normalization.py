"""BatchNormalization, InstanceNormalization, LayerNormalization, LRN -> nn layers."""

from __future__ import annotations

import operator

import torch.nn.functional as F
from torch import nn

from .. import runtime
from ..registry import Unsupported, converter

_BN = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
_IN = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}


@converter("BatchNormalization")
def batch_norm(ctx):
    if ctx.attr("training_mode", 0):
        raise Unsupported("training_mode=1 (export is for inference)")
    scale, bias, mean, var = (ctx.const(i) for i in range(1, 5))
    eps = ctx.attr("epsilon", 1e-5)
    rank = ctx.rank(0)
    if any(t is None for t in (scale, bias, mean, var)) or rank not in _BN:
        return ctx.call(F.batch_norm, ctx.x(0), ctx.x(3), ctx.x(4), ctx.x(1), ctx.x(2), False, 0.0, eps)
    params = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var}
    return ctx.call_module(_BN[rank], ctx.x(0), params=params, num_features=scale.shape[0],
                           eps=eps, momentum=1.0 - ctx.attr("momentum", 0.9))


@converter("InstanceNormalization")
def instance_norm(ctx):
    scale, bias = ctx.const(1), ctx.const(2)
    eps = ctx.attr("epsilon", 1e-5)
    rank = ctx.rank(0)
    if scale is None or bias is None or rank not in _IN:
        return ctx.call(F.instance_norm, ctx.x(0), None, None, ctx.x(1), ctx.x(2), True, 0.0, eps)
    return ctx.call_module(_IN[rank], ctx.x(0), params={"weight": scale, "bias": bias},
                           num_features=scale.shape[0], eps=eps, affine=True)


@converter("LayerNormalization", since=17)
def layer_norm(ctx):
    axis = ctx.attr("axis", -1)
    eps = ctx.attr("epsilon", 1e-5)
    if ctx.output_used(1) or ctx.output_used(2):
        y = ctx.call(runtime.onnx_layer_norm, ctx.x(0), ctx.x(1), ctx.x(2), axis, eps)
        return ctx.split(y, 3)
    rank = ctx.rank(0)
    shape = ctx.shape(0)
    if rank is None or shape is None or any(d is None for d in shape[axis % rank:]):
        # normalized dims known only at run time (free sizes): the operator's definition
        y = ctx.call(runtime.onnx_layer_norm, ctx.x(0), ctx.x(1), ctx.x(2), axis, eps)
        return ctx.call(operator.getitem, y, 0)
    normalized = tuple(shape[axis % rank:])
    scale, bias = ctx.const(1), ctx.const(2)
    if scale is not None and scale.shape == normalized and (bias is None or bias.shape == normalized) \
            and ctx.has_input(2) == (bias is not None):
        params = {"weight": scale} if bias is None else {"weight": scale, "bias": bias}
        return ctx.call_module(nn.LayerNorm, ctx.x(0), params=params, normalized_shape=normalized,
                               eps=eps, bias=bias is not None)
    return ctx.call(F.layer_norm, ctx.x(0), normalized, ctx.x(1), ctx.x(2), eps)


@converter("LRN")
def lrn(ctx):
    size = ctx.attr("size")
    alpha, beta, bias = ctx.attr("alpha", 1e-4), ctx.attr("beta", 0.75), ctx.attr("bias", 1.0)
    if size % 2 == 1 and ctx.rank(0) in (3, 4, 5):
        return ctx.call_module(nn.LocalResponseNorm, ctx.x(0), size=size, alpha=alpha, beta=beta, k=bias)
    return ctx.call(runtime.local_response_norm, ctx.x(0), size, alpha, beta, bias)
