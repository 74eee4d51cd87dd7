"""Helpers for opset 23's attention family (Attention, RotaryEmbedding, RMSNormalization),
written from the operators' definitions; copied into model.py when used."""

from __future__ import annotations

import math

import torch


def onnx_attention(q, k, v, mask=None, past_key=None, past_value=None, nonpad=None, scale=None,
                   is_causal=0, q_heads=None, kv_heads=None, softcap=0.0, qk_mode=-1,
                   left_window=-1, right_window=-1):
    """ONNX Attention: returns (Y, present_key, present_value, qk) in ONNX's shapes."""
    rank3 = q.dim() == 3
    if rank3:  # (batch, seq, heads * size) -> (batch, heads, seq, size)
        q = q.reshape(q.shape[0], q.shape[1], q_heads, -1).transpose(1, 2)
        k = k.reshape(k.shape[0], k.shape[1], kv_heads, -1).transpose(1, 2)
        v = v.reshape(v.shape[0], v.shape[1], kv_heads, -1).transpose(1, 2)
    root = math.sqrt(scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if past_key is not None:
        k, v = torch.cat([past_key, k], 2), torch.cat([past_value, v], 2)
    present_key, present_value = k, v
    sq, skv = q.shape[2], k.shape[2]
    bias = torch.zeros(sq, skv, dtype=q.dtype, device=q.device)
    if mask is not None:
        if mask.shape[-1] < skv:
            fill = False if mask.dtype == torch.bool else -math.inf
            mask = torch.nn.functional.pad(mask, (0, skv - mask.shape[-1]), value=fill)
        if mask.dtype == torch.bool:
            mask = torch.zeros_like(mask, dtype=q.dtype).masked_fill(~mask, -math.inf)
        bias = bias + mask
    offset = past_key.shape[2] if past_key is not None else 0
    if nonpad is not None and past_key is None:
        offset = (nonpad.reshape(-1, 1, 1, 1) - sq)
    rows = torch.arange(sq, device=q.device).reshape(sq, 1)
    cols = torch.arange(skv, device=q.device).reshape(1, skv)
    diff = rows + offset - cols
    allowed = torch.ones_like(diff, dtype=torch.bool)
    if is_causal:
        allowed = allowed & (diff >= 0)
    if left_window >= 0:
        allowed = allowed & (diff <= left_window)
    if right_window >= 0:
        allowed = allowed & (-diff <= right_window)
    bias = bias + torch.zeros_like(allowed, dtype=q.dtype).masked_fill(~allowed, -math.inf)
    if nonpad is not None:
        pad = cols.reshape(1, 1, 1, skv) >= nonpad.reshape(-1, 1, 1, 1)
        bias = bias + torch.zeros_like(pad, dtype=q.dtype).masked_fill(pad, -math.inf)
    if q.shape[1] != k.shape[1]:  # grouped-query attention: each kv head serves several
        k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], 1)
    qk = (q * root) @ (k * root).transpose(-1, -2)
    if softcap and softcap > 0:
        qk = torch.tanh(qk / softcap) * softcap
    scores = qk + bias
    out_qk = scores if qk_mode == 2 else qk
    peak = scores.amax(-1, keepdim=True)
    e = torch.exp(scores - torch.where(torch.isinf(peak) & (peak < 0), torch.zeros_like(peak), peak))
    total = e.sum(-1, keepdim=True)
    probs = e / torch.where(total == 0, torch.ones_like(total), total)
    dead = torch.isneginf(bias.amax(-1, keepdim=True))
    probs = torch.where(dead, torch.zeros_like(probs), probs)
    if qk_mode == 3:
        out_qk = probs
    y = probs @ v
    if rank3:
        y = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
    return y, present_key, present_value, out_qk


def rotary_embedding(x, cos, sin, position_ids=None, interleaved=0, rotary_dim=0, num_heads=0):
    """ONNX RotaryEmbedding on (batch, heads, seq, size) or (batch, seq, heads * size)."""
    shape = x.shape
    x = x.transpose(1, 2) if x.dim() == 4 else x.reshape(shape[0], shape[1], num_heads, -1)
    rotary_dim = rotary_dim or x.shape[-1]
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    if position_ids is not None:
        cos, sin = cos[position_ids], sin[position_ids]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    x1, x2 = (rot[..., 0::2], rot[..., 1::2]) if interleaved else rot.chunk(2, -1)
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    rot = torch.stack([real, imag], -1).reshape(rot.shape) if interleaved else torch.cat([real, imag], -1)
    y = torch.cat([rot, rest], -1)
    return y.reshape(shape) if len(shape) == 3 else y.transpose(1, 2)


def rms_norm(x, scale, axis=-1, eps=1e-5):
    """ONNX RMSNormalization, computed in float32: x / sqrt(mean(x^2) + eps) * scale."""
    dims = tuple(range(axis % x.dim(), x.dim()))
    xf = x.float()
    y = xf * torch.rsqrt(xf.square().mean(dims, keepdim=True) + eps)
    return (y * scale.float()).to(x.dtype)
