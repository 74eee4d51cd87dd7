"""Helpers for ONNX's indexing ops (GatherND, ScatterND, ScatterElements, OneHot, ...).

Copied into model.py by codegen when used: each function stands alone (torch, F, math only).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gather_nd(data, indices, batch_dims=0):
    """ONNX GatherND: the last axis of `indices` indexes data's dims after the batch dims."""
    b, k = batch_dims, indices.shape[-1]
    n = math.prod(data.shape[:b])
    flat = data.reshape((n,) + tuple(data.shape[b:]))
    idx = indices.reshape(n, -1, k).long()
    idx = torch.where(idx < 0, idx + torch.tensor(data.shape[b:b + k], device=idx.device), idx)
    batch = torch.arange(n, device=idx.device).unsqueeze(1).expand(n, idx.shape[1])
    out = flat[(batch,) + tuple(idx.unbind(-1))]
    return out.reshape(tuple(indices.shape[:-1]) + tuple(data.shape[b + k:]))


def scatter_nd(data, indices, updates, reduction="none"):
    """ONNX ScatterND: a copy of data with `updates` written (or reduced) at `indices`."""
    k = indices.shape[-1]
    out = data.clone()
    idx = indices.reshape(-1, k).long()
    idx = torch.where(idx < 0, idx + torch.tensor(data.shape[:k], device=idx.device), idx)
    upd = updates.reshape((-1,) + tuple(data.shape[k:]))
    where = tuple(idx.unbind(-1))
    if reduction == "none":
        out[where] = upd
    elif reduction == "add":
        out.index_put_(where, upd, accumulate=True)
    else:  # mul, max, min: one update at a time, in order, as ONNX defines it
        op = {"mul": torch.mul, "max": torch.maximum, "min": torch.minimum}[reduction]
        for i in range(upd.shape[0]):
            at = tuple(int(j[i]) for j in where)
            out[at] = op(out[at], upd[i])
    return out


def scatter_elements(data, indices, updates, axis=0, reduction="none"):
    """ONNX ScatterElements: torch.scatter / scatter_reduce with negative indices resolved."""
    idx = indices.long()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    if reduction == "none":
        return torch.scatter(data, axis, idx, updates)
    how = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}[reduction]
    return torch.scatter_reduce(data, axis, idx, updates, how, include_self=True)


def one_hot(indices, depth, values, axis=-1):
    """ONNX OneHot: values[1] where the (negative: from the end) index hits, values[0] elsewhere."""
    depth = int(depth.reshape(-1)[0])
    idx = indices.long()
    idx = torch.where(idx < 0, idx + depth, idx)
    valid = (idx >= 0) & (idx < depth)
    hot = F.one_hot(idx.clamp(0, depth - 1), depth).bool() & valid.unsqueeze(-1)
    return torch.where(hot, values[1], values[0]).movedim(-1, axis)


def compress(x, condition, axis=None):
    """ONNX Compress: the slices along axis (of the flattened x if None) where condition holds."""
    if axis is None:
        x, axis = x.reshape(-1), 0
    keep = torch.nonzero(condition[: x.shape[axis]]).reshape(-1)
    return x.index_select(axis, keep)


def eye_like(x, k=0, dtype=None):
    """ONNX EyeLike: ones on the k-th diagonal of a 2-D tensor shaped like x."""
    ones = torch.ones(x.shape, dtype=torch.bool, device=x.device)
    return (ones.triu(k) & ones.tril(k)).to(dtype or x.dtype)


def reverse_sequence(x, lens, batch_axis=1, time_axis=0):
    """ONNX ReverseSequence: reverse the first lens[b] steps of each batch entry."""
    out = x.clone()
    for b in range(x.shape[batch_axis]):
        n = int(lens[b])
        part = x.select(batch_axis, b).narrow(time_axis - (time_axis > batch_axis), 0, n)
        out.select(batch_axis, b).narrow(time_axis - (time_axis > batch_axis), 0, n).copy_(
            part.flip(time_axis - (time_axis > batch_axis)))
    return out


def cumprod(x, axis, exclusive=0, reverse=0):
    """ONNX CumProd (exclusive: shifted by one, starting from 1)."""
    axis = int(torch.as_tensor(axis).reshape(-1)[0])
    if reverse:
        x = x.flip(axis)
    if exclusive:
        ones = torch.ones_like(x.narrow(axis, 0, 1))
        x = torch.cat([ones, x.narrow(axis, 0, x.shape[axis] - 1)], axis)
    y = torch.cumprod(x, axis).to(x.dtype)
    return y.flip(axis) if reverse else y


def lp_normalize(x, axis, p):
    """ONNX LpNormalization: x / ||x||_p along axis (0 where the norm is 0)."""
    norm = x.abs().sum(axis, keepdim=True) if p == 1 else x.square().sum(axis, keepdim=True).sqrt()
    return torch.where(norm == 0, torch.zeros_like(x), x / norm)


def mean_variance_normalize(x, axes):
    """ONNX MeanVarianceNormalization: (x - mean) / sqrt(var + 1e-9) over axes."""
    mean = x.mean(axes, keepdim=True)
    var = (x * x).mean(axes, keepdim=True) - mean * mean
    return (x - mean) / torch.sqrt(var + 1e-9)
