"""Gemm, MatMul, Einsum -> nn.Linear where the weights are constant, else torch functions."""

from __future__ import annotations

import operator

import onnx_ir as ir
import torch
from torch import nn
from torch.nn import functional as F

from ..registry import converter
from . import sdpa_chain


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
    """nn.Linear for a constant 2-D weight, taking the bias of the Add that follows (TorchScript
    writes x @ W then `bias + y`) so that it is one layer; torch.matmul otherwise."""
    w = ctx.const(1)
    if w is not None and w.ndim == 2 and w.dtype.kind == "f":
        add, bias = _bias_add(ctx, w)
        params = {"weight": w.T} if bias is None else {"weight": w.T, "bias": bias}
        y = ctx.call_module(nn.Linear, ctx.x(0), params=params, in_features=w.shape[0], out_features=w.shape[1],
                            bias=bias is not None)
        if add is not None:
            ctx.builder.done.add(add)
            ctx.builder.env[add.outputs[0].name] = y
            ctx.builder.values[add.outputs[0].name] = y.name
        return y
    if ctx.node in ctx.builder.pending:  # the end of an attention core found at its first MatMul
        return _attention(ctx, *ctx.builder.pending.pop(ctx.node))
    if _defer_attention(ctx):
        return None
    return ctx.call(torch.matmul, ctx.x(0), ctx.x(1))


def _defer_attention(ctx) -> bool:
    """At the scores' MatMul of an attention core (sdpa_chain): leave the core to its last MatMul
    (by then the mask, computed later in the graph's order, and v exist) and skip the nodes between."""
    found = sdpa_chain.match(ctx.node)
    if found is None:
        return False
    q, kt, v, scale, mask, guarded, covered = found
    if len({q.dtype, kt.dtype, v.dtype}) != 1 or ctx.dtype(0) is None or not ctx.dtype(0).is_floating_point \
            or (mask is not None and mask.dtype not in (q.dtype, ir.DataType.BOOL)):
        return False
    ctx.builder.pending[covered[-1]] = (q, kt, v, scale, mask, guarded)
    ctx.builder.done.update([ctx.node, *covered[:-1]])  # the scores are never bound: only the core reads them
    return True


def _attention(ctx, q, kt, v, scale, mask, guarded):
    """F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=s), NaN rows set to 0 where
    the source guards its probabilities (a fully masked row)."""
    b, name = ctx.builder, ctx.node.outputs[0].name
    k = b.create("call_method", "transpose", (b.value_of(kt), -2, -1), {}, None)
    kwargs = {"scale": scale} if mask is None else {"attn_mask": b.value_of(mask), "scale": scale}
    y = b.create("call_function", F.scaled_dot_product_attention, (b.value_of(q), k, b.value_of(v)), kwargs,
                 None if guarded else name)
    if guarded:
        y = b.create("call_method", "masked_fill", (y, b.create("call_method", "isnan", (y,), {}, None), 0.0), {}, name)
    return y


def _bias_add(ctx, w):
    """(the Add, its bias vector) when the MatMul's only reader adds a constant vector of the
    output size in the weight's dtype; (None, None) otherwise."""
    y = ctx.node.outputs[0]
    uses = list(y.uses())
    if len(uses) != 1 or y.is_graph_output():
        return None, None
    add = uses[0][0]
    if add.op_type != "Add" or add.domain or len(add.inputs) != 2:
        return None, None
    other = add.inputs[1 - uses[0][1]]
    c = other.const_value.numpy() if other is not None and other.const_value is not None else None
    if c is None or c.dtype != w.dtype or c.size != w.shape[1] or c.shape[-1:] != (w.shape[1],) \
            or add.outputs[0].shape is None or y.shape is None or len(add.outputs[0].shape) != len(y.shape):
        return None, None
    return add, c.reshape(-1)


@converter("Einsum")
def einsum(ctx):
    eq = ctx.attr("equation")
    eq = eq.decode() if isinstance(eq, bytes) else eq
    return ctx.call(torch.einsum, eq, *[ctx.x(i) for i in range(ctx.num_inputs)])
