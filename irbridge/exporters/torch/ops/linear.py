"""Gemm, MatMul, Einsum -> nn.Linear where the weights are constant, else torch functions."""

from __future__ import annotations

import operator

import torch
from torch import nn

from ..registry import converter


@converter("Gemm")
def gemm(ctx):
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    trans_a, trans_b = ctx.attr("transA", 0), ctx.attr("transB", 0)
    w, c = ctx.const(1), ctx.const(2)
    out_features = None if w is None else (w.shape[0] if trans_b else w.shape[1])
    bias_ok = not ctx.has_input(2) or (
        c is not None and beta == 1.0 and c.size == out_features and c.shape[-1:] == (out_features,)
    )
    if w is not None and w.ndim == 2 and not trans_a and alpha == 1.0 and bias_ok:
        weight = w if trans_b else w.T
        params = {"weight": weight} if c is None else {"weight": weight, "bias": c.reshape(-1)}
        return ctx.call_module(nn.Linear, ctx.x(0), params=params,
                               in_features=weight.shape[1], out_features=weight.shape[0],
                               bias=c is not None)
    a = ctx.x(0)
    b = ctx.x(1)
    if trans_a:
        a = ctx.method("t", a)
    if trans_b:
        b = ctx.method("t", b)
    y = ctx.call(torch.matmul, a, b)
    if alpha != 1.0:
        y = ctx.call(operator.mul, y, alpha)
    if ctx.has_input(2):
        cc = ctx.operand(2)
        y = ctx.call(operator.add, y, cc if beta == 1.0 else ctx.call(operator.mul, cc, beta))
    return y


@converter("MatMul")
def matmul(ctx):
    w = ctx.const(1)
    if w is not None and w.ndim == 2 and w.dtype.kind == "f":
        return ctx.call_module(nn.Linear, ctx.x(0), params={"weight": w.T},
                               in_features=w.shape[0], out_features=w.shape[1], bias=False)
    return ctx.call(torch.matmul, ctx.x(0), ctx.x(1))


@converter("Einsum")
def einsum(ctx):
    eq = ctx.attr("equation")
    eq = eq.decode() if isinstance(eq, bytes) else eq
    return ctx.call(torch.einsum, eq, *[ctx.x(i) for i in range(ctx.num_inputs)])
