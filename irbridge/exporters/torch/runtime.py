"""Helpers for ONNX semantics that torch has no single call for.

Generated code calls these; `codegen` copies the source of each one it uses into model.py,
so every function here must be self-contained (only `torch` and `F` from the module scope).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def onnx_pad(x, pads, mode="constant", value=0.0, axes=None):
    """ONNX Pad: pads = [b_0, b_1, ..., e_0, e_1, ...] over all dims (or over `axes`);
    negative pads crop."""
    if torch.is_tensor(value):
        value = value.item()
    pads = [int(p) for p in pads]
    if axes is not None:
        full = [0] * (2 * x.dim())
        for k, a in enumerate(axes):
            full[int(a) % x.dim()] = pads[k]
            full[int(a) % x.dim() + x.dim()] = pads[k + len(axes)]
        pads = full
    n = len(pads) // 2
    torch_pads = []
    for d in reversed(range(n)):
        torch_pads += [int(pads[d]), int(pads[d + n])]
    while len(torch_pads) >= 2 and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]
    if not torch_pads:
        return x
    if mode == "constant":
        return F.pad(x, torch_pads, mode="constant", value=value)
    mode = {"edge": "replicate", "reflect": "reflect", "wrap": "circular"}[mode]
    # torch pads only trailing dims in these modes, on a (N, C, *spatial) tensor
    lead = x.dim() - len(torch_pads) // 2
    y = F.pad(x.reshape((1, -1) + tuple(x.shape[lead:])), torch_pads, mode=mode)
    return y.reshape(tuple(x.shape[:lead]) + tuple(y.shape[2:]))


def same_pads(sizes, kernel, stride, dilation, upper=True):
    """ONNX auto_pad SAME_UPPER/SAME_LOWER: spatial pads [b0, b1, ..., e0, e1, ...] (the twin of
    exporters/_window.py's, copied here because model.py must stand alone)."""
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, stride, dilation):
        out = -(-int(size) // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - int(size))
        small, big = total // 2, total - total // 2
        begins.append(small if upper else big)
        ends.append(big if upper else small)
    return begins + ends


def pad_same(x, kernel, stride, dilation, upper=True, value=0.0):
    """Pad x's spatial dims as auto_pad SAME does, computed from x's run-time shape."""
    pads = same_pads(x.shape[2:], kernel, stride, dilation, upper)
    n = len(kernel)
    return onnx_pad(x, [0, 0] + pads[:n] + [0, 0] + pads[n:], value=value)


def local_response_norm(x, size, alpha, beta, bias):
    """ONNX LRN for any window size (torch's LocalResponseNorm centres even windows differently)."""
    sq = (x * x).unsqueeze(1)
    front = (size - 1) // 2
    sq = F.pad(sq, (0, 0) * (x.dim() - 2) + (front, size - 1 - front))
    window = (size,) + (1,) * (x.dim() - 2)
    pool = F.avg_pool2d if x.dim() == 3 else F.avg_pool3d
    s = pool(sq, window, stride=1).squeeze(1) * size
    return x / (bias + alpha / size * s) ** beta


def avg_pool_exclude_pad(x, kernel, stride, pads, ceil_mode):
    """AveragePool with count_include_pad=0 and pads torch cannot express (asymmetric)."""
    pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(kernel) - 1]
    n = len(kernel)
    full = [0, 0] + list(pads[:n]) + [0, 0] + list(pads[n:])
    xp = onnx_pad(x, full)
    ones = onnx_pad(torch.ones_like(x[:1, :1]), full)
    s = pool(xp, kernel, stride, ceil_mode=ceil_mode, count_include_pad=True)
    c = pool(ones, kernel, stride, ceil_mode=ceil_mode, count_include_pad=True)
    return s / c


def onnx_reshape(x, shape, allowzero=0):
    """ONNX Reshape: 0 copies the input dim (unless allowzero), -1 is inferred."""
    shape = [int(s) for s in shape]
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def onnx_flatten(x, axis):
    """ONNX Flatten: always 2-D, [prod(dims before axis), prod(dims from axis)]; axis is in
    [-rank, rank] (axis == rank gives (numel, 1); a negative axis counts from the end)."""
    if axis < 0:
        axis += x.dim()
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def onnx_unsqueeze(x, axes):
    rank = x.dim() + len(axes)
    for a in sorted(int(a) % rank for a in axes):
        x = x.unsqueeze(a)
    return x


def onnx_squeeze(x, axes=None):
    if axes is None:
        return x.squeeze()
    return x.squeeze(tuple(int(a) % x.dim() for a in axes))


def onnx_slice(x, starts, ends, axes=None, steps=None):
    """ONNX Slice, including negative steps (which Python indexing of tensors lacks)."""
    axes = list(range(len(starts))) if axes is None else [int(a) % x.dim() for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    for start, end, axis, step in zip(starts, ends, axes, steps):
        start, end, step, dim = int(start), int(end), int(step), x.shape[axis]
        if step > 0:
            x = x[(slice(None),) * axis + (slice(start, end, step),)]
        else:
            start = start + dim if start < 0 else start
            end = end + dim if end < 0 else end
            start = min(max(start, 0), dim - 1)
            end = min(max(end, -1), dim - 1)
            idx = torch.arange(start, end, step, device=x.device)
            x = x.index_select(axis, idx)
    return x


def onnx_gather(x, indices, axis):
    """ONNX Gather: negative indices count from the end; output rank = r + q - 1."""
    axis = axis % x.dim()
    idx = torch.where(indices < 0, indices + x.shape[axis], indices).long()
    out = x.index_select(axis, idx.reshape(-1))
    return out.reshape(tuple(x.shape[:axis]) + tuple(indices.shape) + tuple(x.shape[axis + 1:]))


def onnx_gather_elements(x, indices, axis):
    idx = torch.where(indices < 0, indices + x.shape[axis], indices).long()
    return torch.gather(x, axis, idx)


def onnx_shape(x, start=0, end=None):
    return torch.tensor(x.shape[start:end], dtype=torch.long)


def onnx_expand(x, shape):
    """ONNX Expand broadcasts both ways (a 1 in `shape` keeps x's dim)."""
    shape = [int(s) for s in shape]
    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(shape)))


def onnx_split(x, sizes_or_n, axis):
    """ONNX Split: explicit sizes, or n parts of ceil(dim / n) (the last one smaller)."""
    if isinstance(sizes_or_n, int):
        return torch.split(x, -(-x.shape[axis] // sizes_or_n), axis)
    return torch.split(x, [int(s) for s in sizes_or_n], axis)


def onnx_div(a, b):
    """ONNX Div: integer division truncates toward zero."""
    if not a.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def onnx_pow(a, b):
    """ONNX Pow: the result has the base's type."""
    return torch.pow(a, b).to(a.dtype)


def onnx_range(start, limit, delta):
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype)


def onnx_reduce(fn, x, axes, keepdims, noop_with_empty_axes=0):
    """Reduce over `axes` (all when empty) with torch.<fn>(x, dim, keepdim), one axis at a time."""
    if not axes and noop_with_empty_axes:
        return x
    fn = getattr(torch, fn)
    dims = sorted({int(a) % x.dim() for a in axes} if axes else range(x.dim()), reverse=True)
    for d in dims:
        x = fn(x, d, keepdim=bool(keepdims))
    return x


def onnx_arg(fn, x, axis, keepdims, select_last_index):
    """ArgMax/ArgMin (fn "argmax"/"argmin"); select_last_index picks the last of tied values."""
    fn = getattr(torch, fn)
    if select_last_index:
        flipped = fn(x.flip(axis), dim=axis, keepdim=bool(keepdims))
        return x.shape[axis] - 1 - flipped
    return fn(x, dim=axis, keepdim=bool(keepdims))


def onnx_topk(x, k, axis, largest):
    """TopK: the k largest (or smallest) along axis, sorted, ties broken by the lower index."""
    values, indices = torch.sort(x, dim=axis, descending=bool(largest), stable=True)
    return values.narrow(axis, 0, k), indices.narrow(axis, 0, k)


def onnx_layer_norm(x, scale, bias, axis, eps):
    """LayerNormalization with its Mean and InvStdDev outputs (reduced dims kept as 1)."""
    dims = tuple(range(axis % x.dim(), x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    inv_std = torch.rsqrt(((x - mean) ** 2).mean(dim=dims, keepdim=True) + eps)
    y = (x - mean) * inv_std * scale
    if bias is not None:
        y = y + bias
    return y, mean, inv_std


def onnx_cumsum(x, axis, exclusive=0, reverse=0):
    axis = int(axis[0]) if isinstance(axis, (list, tuple)) else int(axis)
    if reverse:
        x = x.flip(axis)
    y = torch.cumsum(x, axis).to(x.dtype)
    if exclusive:
        y = y - x
    return y.flip(axis) if reverse else y


def hard_sigmoid(x, alpha, beta):
    return torch.clamp(alpha * x + beta, 0.0, 1.0)


def selu(x, alpha, gamma):
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


def thresholded_relu(x, alpha):
    return torch.where(x > alpha, x, torch.zeros_like(x))


def shrink(x, bias, lambd):
    return torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, torch.zeros_like(x)))


def hardmax(x, axis):
    return F.one_hot(x.argmax(dim=axis), x.shape[axis]).movedim(-1, axis).to(x.dtype)


def depth_to_space(x, blocksize, mode):
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(x, blocksize, mode="DCR"):
    n, c, h, w = x.shape
    b = blocksize
    y = x.reshape(n, c, h // b, b, w // b, b)
    y = y.permute(0, 3, 5, 1, 2, 4) if mode == "DCR" else y.permute(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)
