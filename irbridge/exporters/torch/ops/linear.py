"""Gemm, MatMul, Einsum -> nn.Linear where the weights are constant, else torch functions."""

from __future__ import annotations

import math
import operator

import numpy as np
import onnx_ir as ir
import torch
import torch.fx
from torch import nn
from torch.nn import functional as F

from .. import hierarchy
from ..builder import TORCH_DTYPES
from ..registry import converter
from . import sdpa_chain
from ._chain import only_reader, stand_in


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
            stand_in(ctx.builder, [add], y)
        return y
    if ctx.node in ctx.builder.pending:  # the end of an attention core found at its first MatMul
        return _attention(ctx, ctx.builder.pending.pop(ctx.node))
    if _defer_attention(ctx):
        return None
    return ctx.call(torch.matmul, ctx.x(0), ctx.x(1))


def _defer_attention(ctx) -> bool:
    """At the scores' MatMul of an attention core (sdpa_chain): leave the core to its last MatMul
    (by then the mask, computed later in the graph's order, and v exist) and skip the nodes between."""
    core = sdpa_chain.match(ctx.node)
    if core is None:
        return False
    q, v, mask = core.q, core.v, core.mask
    if len({q.dtype, core.k.dtype, v.dtype}) != 1 or TORCH_DTYPES.get(q.dtype) is None \
            or not TORCH_DTYPES[q.dtype].is_floating_point \
            or (mask is not None and mask.dtype not in (q.dtype, ir.DataType.BOOL)):
        return False
    b = ctx.builder
    b.pending[core.covered[-1]] = core
    b.done.update([ctx.node, *core.covered[:-1]])  # the scores are never bound: only the core reads them
    b.done.update(n for n in core.folded if not _converted(b, n))  # e.g. the mask's Where, later in order
    return True


def _converted(b, node) -> bool:
    return any(o.name in b.env or o.name in b.dims for o in node.outputs)


def _attention(ctx, core):
    """F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=s); the result's NaN (a row
    the source's guard sets to 0) set to 0 in place where the source guards its probabilities."""
    b, name = ctx.builder, ctx.out_name()
    if ctx.node.outputs[0].name.startswith("/") and hierarchy.scope_path(ctx.node.outputs[0].name):
        name = hierarchy.scope_path(ctx.node.outputs[0].name) + "_attention"  # m_encoder_layer_0_attention_self_attention
    k = b.value_of(core.k)
    k = (b.create("call_method", "transpose", (k, -2, -1), {}, f"{k.name}_keys") if core.k_perm is None
         else b.create("call_method", "permute", (k, *core.k_perm), {}, f"{k.name}_keys"))
    scale = core.scale
    if core.q.dtype in (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.BFLOAT16):
        scale = float(str(np.float32(scale)))  # the kernel's float: 0.125, not 0.12500000214
    q = b.value_of(core.q)
    if core.q_perm is not None:
        q = b.create("call_method", "permute", (q, *core.q_perm), {}, f"{q.name}_queries")
    kwargs = {"scale": scale} if core.mask is None else {"attn_mask": _mask(b, core), "scale": scale}
    y = b.create("call_function", F.scaled_dot_product_attention, (q, k, b.value_of(core.v)),
                 kwargs, f"{name}_unguarded" if core.guarded else name)
    if core.guarded:  # in place on SDPA's fresh output: keeps its layout, so the heads' merge is a view
        y = b.create("call_method", "nan_to_num_", (y, 0.0, math.inf, -math.inf), {}, name)
    _drop(b, [n for n in core.folded if _converted(b, n)])
    return y


def _mask(b, core):
    """The mask as SDPA takes it: for Where(m, 0, -inf), which every layer repeats, one
    `torch.where(m, 0.0, -inf)` (in q's dtype) that the layers share."""
    if not core.additive_of:
        return b.value_of(core.mask)
    if core.mask.name not in b.masks:
        m = b.value_of(core.mask)
        dtype = TORCH_DTYPES[core.q.dtype]
        additive = b.create("call_function", torch.where, (m, 0.0, -math.inf), {},
                            f"{m.name}_additive" if dtype == torch.float32 else f"{m.name}_additive_float32")
        if dtype != torch.float32:
            additive = b.create("call_method", "to", (additive, dtype), {}, f"{m.name}_additive")
        b.masks[core.mask.name] = additive
    return b.masks[core.mask.name]


def _drop(b, nodes) -> None:
    """Erase the torch-graph values of ONNX nodes the attention core made unused (q's and k's scalar
    Muls, k's Transpose), latest first."""
    for node in reversed(nodes):
        own = {id(b.env.get(i.name)) for i in node.inputs if i is not None}
        for out in node.outputs:
            fx_node = b.env.get(out.name)
            if isinstance(fx_node, torch.fx.Node) and id(fx_node) not in own and not fx_node.users \
                    and fx_node.op.startswith("call_"):
                b.graph.erase_node(fx_node)
                del b.env[out.name]
                b.values.pop(out.name, None)


def _bias_add(ctx, w):
    """(the Add, its bias vector) when the MatMul's only reader adds a constant vector of the
    output size in the weight's dtype; (None, None) otherwise."""
    y = ctx.node.outputs[0]
    found = only_reader(y, "Add")
    if found is None or len(found[0].inputs) != 2:
        return None, None
    add, index = found
    other = add.inputs[1 - index]
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
