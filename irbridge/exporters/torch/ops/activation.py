"""Activations -> nn activation layers (ReLU, LeakyReLU, PReLU, Softmax, ...)."""

from __future__ import annotations

import torch
from torch import nn

from .. import runtime
from ..registry import converter

SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


def _simple(op_type: str, cls: type, inplace: bool = False, **attr_to_kwarg):
    """Register an activation whose layer takes (at most) renamed ONNX attributes; `inplace`:
    the layer can overwrite its input, which it does when nothing else reads it."""

    def convert(ctx):
        kwargs = {k: ctx.attr(a, default) for k, (a, default) in attr_to_kwarg.items()}
        if inplace and ctx.may_overwrite(0):
            kwargs["inplace"] = True
        return ctx.call_module(cls, ctx.x(0), **kwargs)

    convert.__name__ = op_type.lower()
    converter(op_type)(convert)


_simple("Relu", nn.ReLU, inplace=True)
_simple("Sigmoid", nn.Sigmoid)
_simple("Tanh", nn.Tanh)
_simple("Softsign", nn.Softsign)
_simple("Mish", nn.Mish)
_simple("HardSwish", nn.Hardswish, inplace=True)
_simple("LeakyRelu", nn.LeakyReLU, inplace=True, negative_slope=("alpha", 0.01))
_simple("Elu", nn.ELU, inplace=True, alpha=("alpha", 1.0))
_simple("Celu", nn.CELU, alpha=("alpha", 1.0))


@converter("Softplus")
def softplus(ctx):
    # torch's threshold=20 linearization equals log(1+exp(x)) to float32 precision there
    return ctx.call_module(nn.Softplus, ctx.x(0))


@converter("Gelu", since=20)
def gelu(ctx):
    approx = ctx.attr("approximate", "none")
    return ctx.call_module(nn.GELU, ctx.x(0), approximate=approx.decode() if isinstance(approx, bytes) else approx)


@converter("Selu")
def selu(ctx):
    alpha, gamma = ctx.attr("alpha", SELU_ALPHA), ctx.attr("gamma", SELU_GAMMA)
    if abs(alpha - SELU_ALPHA) < 1e-6 and abs(gamma - SELU_GAMMA) < 1e-6:
        return ctx.call_module(nn.SELU, ctx.x(0))
    return ctx.call(runtime.selu, ctx.x(0), alpha, gamma)


@converter("HardSigmoid")
def hard_sigmoid(ctx):
    alpha, beta = ctx.attr("alpha", 0.2), ctx.attr("beta", 0.5)
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return ctx.call_module(nn.Hardsigmoid, ctx.x(0))
    return ctx.call(runtime.hard_sigmoid, ctx.x(0), alpha, beta)


@converter("ThresholdedRelu")
def thresholded_relu(ctx):
    return ctx.call(runtime.thresholded_relu, ctx.x(0), ctx.attr("alpha", 1.0))


@converter("Shrink")
def shrink(ctx):
    return ctx.call(runtime.shrink, ctx.x(0), ctx.attr("bias", 0.0), ctx.attr("lambd", 0.5))


@converter("PRelu")
def prelu(ctx):
    slope = ctx.const(1)
    rank = ctx.rank(0)
    if slope is not None and slope.dtype.kind == "f" and rank is not None and rank >= 2:
        channels = ctx.shape(0)[1]
        if slope.size == 1 or (slope.shape == (channels,) + (1,) * (rank - 2) and channels):
            return ctx.call_module(nn.PReLU, ctx.x(0), params={"weight": slope.reshape(-1)},
                                   num_parameters=slope.size)
    x = ctx.x(0)
    return ctx.call(torch.where, ctx.call(torch.ge, x, 0), x, ctx.call(torch.mul, x, ctx.x(1)))


@converter("Clip", since=11)
def clip(ctx):
    lo = ctx.operand(1) if ctx.has_input(1) else None
    hi = ctx.operand(2) if ctx.has_input(2) else None
    if lo == 0 and hi == 6 and not isinstance(lo, bool):
        return ctx.call_module(nn.ReLU6, ctx.x(0), **({"inplace": True} if ctx.may_overwrite(0) else {}))
    if lo is None and hi is None:
        return ctx.x(0)
    return ctx.call(torch.clamp, ctx.x(0), lo, hi)


def _softmax(op_type, cls):
    def convert(ctx):
        return ctx.call_module(cls, ctx.x(0), dim=ctx.attr("axis", -1))

    converter(op_type, since=13)(convert)


_softmax("Softmax", nn.Softmax)
_softmax("LogSoftmax", nn.LogSoftmax)


@converter("Hardmax", since=13)
def hardmax(ctx):
    return ctx.call(runtime.hardmax, ctx.x(0), ctx.attr("axis", -1))
