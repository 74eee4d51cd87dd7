"""Opset 23's Attention, RotaryEmbedding and RMSNormalization: F.scaled_dot_product_attention
and nn.RMSNorm where they compute the operator, else helpers from runtime_attention.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import runtime_attention as rt
from ..registry import converter


@converter("Attention", since=23)
def attention(ctx):
    scale = ctx.attr("scale", None)
    causal = ctx.attr("is_causal", 0)
    softcap = ctx.attr("softcap", 0.0) or 0.0
    q_heads, kv_heads = ctx.attr("q_num_heads", None), ctx.attr("kv_num_heads", None)
    plain = (not any(ctx.has_input(i) for i in range(3, 7)) and not softcap
             and not any(ctx.output_used(i) for i in (1, 2, 3))
             and ctx.attr("left_window_size", -1) == -1 and ctx.attr("right_window_size", -1) == -1
             and ctx.rank(0) == 4 and ctx.attr("softmax_precision", None) is None
             and ctx.dtype(0) in (torch.float32, torch.float64))
    if plain:  # what a person writes (top-left causal is SDPA's is_causal)
        kwargs = {"is_causal": bool(causal)}
        if scale is not None:
            kwargs["scale"] = scale
        shape_q, shape_k = ctx.shape(0), ctx.shape(1)
        if shape_q[1] != shape_k[1]:
            kwargs["enable_gqa"] = True
        return ctx.call(F.scaled_dot_product_attention, ctx.x(0), ctx.x(1), ctx.x(2), **kwargs)
    out = ctx.call(rt.onnx_attention, ctx.x(0), ctx.x(1), ctx.x(2), ctx.x(3), ctx.x(4), ctx.x(5),
                   ctx.x(6), scale, causal, q_heads, kv_heads, softcap, ctx.attr("qk_matmul_output_mode", 0),
                   ctx.attr("left_window_size", -1), ctx.attr("right_window_size", -1))
    return ctx.split(out, 4)


@converter("RotaryEmbedding", since=23)
def rotary_embedding(ctx):
    return ctx.call(rt.rotary_embedding, ctx.x(0), ctx.x(1), ctx.x(2), ctx.x(3),
                    ctx.attr("interleaved", 0), ctx.attr("rotary_embedding_dim", 0), ctx.attr("num_heads", 0))


@converter("RMSNormalization", since=23)
def rms_normalization(ctx):
    axis, eps = ctx.attr("axis", -1), ctx.attr("epsilon", 1e-5)
    shape, scale = ctx.shape(0), ctx.const(1)
    if shape is not None and scale is not None and ctx.dtype(0) == torch.float32 \
            and tuple(shape[axis % len(shape):]) == scale.shape and None not in scale.shape:
        return ctx.call_module(nn.RMSNorm, ctx.x(0), params={"weight": scale},
                               normalized_shape=tuple(scale.shape), eps=eps)
    return ctx.call(rt.rms_norm, ctx.x(0), ctx.x(1), axis, eps)
