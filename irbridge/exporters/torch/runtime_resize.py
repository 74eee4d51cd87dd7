"""ONNX Resize for every mode and coordinate transform, one axis at a time (as ONNX defines
it: separable). Used where F.interpolate is not exact; copied into model.py when used."""

from __future__ import annotations

import math

import torch


def resize_taps(ratio, mode, scale, a, antialias):
    """Interpolation weights [out, taps] for offsets start..start+taps-1 from floor, where
    `ratio` in (0, 1] is the position past the tap before the source coordinate."""
    s = min(scale, 1.0) if antialias else 1.0
    if mode == "linear":
        start = math.floor(-1 / s) + 1 if antialias else 0
        offsets = torch.arange(start, 2 - start, dtype=torch.float64)
        w = (1 - ((offsets - ratio[:, None]) * s).abs()).clamp(0, 1)
    else:  # cubic
        start = math.floor(-2 / s) + 1 if antialias else -1
        offsets = torch.arange(start, 2 - start, dtype=torch.float64)
        d = ((offsets - ratio[:, None]) * s).abs()
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        w = torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))
    if antialias:
        w = w / w.sum(1, keepdim=True)
    return start, w


def resize_axis(x, axis, out_size, scale, mode="nearest", coord="half_pixel", cubic_a=-0.75,
                exclude_outside=0, extrapolation=0.0, nearest_mode="round_prefer_floor",
                antialias=0, roi=(0.0, 1.0)):
    """Resize one axis of x to out_size, exactly as ONNX Resize computes it (in float64)."""
    n = x.shape[axis]
    i = torch.arange(out_size, dtype=torch.float64)
    length = scale * n
    if coord == "align_corners":
        src = i * 0 if length == 1 else i * (n - 1) / (length - 1)
    elif coord == "asymmetric":
        src = i / scale
    elif coord == "tf_crop_and_resize":
        span = (roi[1] - roi[0]) * (n - 1)
        src = i * 0 + span / 2 if length == 1 else i * span / (length - 1)
        src = src + roi[0] * (n - 1)
    elif coord == "pytorch_half_pixel":
        src = i * 0 - 0.5 if length == 1 else (i + 0.5) / scale - 0.5
    elif coord == "half_pixel_symmetric":
        offset = n / 2 * (1 - out_size / length)
        src = offset + (i + 0.5) / scale - 0.5
    else:  # half_pixel
        src = (i + 0.5) / scale - 0.5
    base = torch.ceil(src) - 1  # the tap before src (src itself when it is a whole number)
    ratio = src - base
    if mode == "nearest":
        pick = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
                "floor": ratio > 1, "ceil": ratio > 0}[nearest_mode] | (ratio == 1)
        idx = (base + pick.double()).long().clamp(0, n - 1)
        y = x.index_select(axis, idx.to(x.device))
    else:
        start, w = resize_taps(ratio, mode, scale, cubic_a, antialias)
        idx = base.long()[:, None] + torch.arange(start, start + w.shape[1])
        if exclude_outside:
            w = torch.where((idx < 0) | (idx >= n), torch.zeros_like(w), w)
            w = w / w.sum(1, keepdim=True)
        matrix = torch.zeros(out_size, n, dtype=torch.float64)
        matrix.scatter_add_(1, idx.clamp(0, n - 1), w)
        moved = x.movedim(axis, -1)
        y = (moved.double() @ matrix.T.to(x.device)).to(x.dtype).movedim(-1, axis)
    if coord == "tf_crop_and_resize":
        outside = ((src < 0) | (src > n - 1)).to(x.device)
        shape = [1] * x.dim()
        shape[axis] = out_size
        y = torch.where(outside.reshape(shape), torch.tensor(extrapolation, dtype=x.dtype), y)
    return y


def onnx_resize(x, roi=None, scales=None, sizes=None, axes=None, policy="stretch", **how):
    """ONNX Resize: output sizes from `sizes` (under keep_aspect_ratio_policy) or `scales`,
    then each resized axis in turn (resize_axis)."""
    rank = x.dim()
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    full_scale = [1.0] * rank
    out = list(x.shape)
    if sizes is not None and len(sizes):
        for a, s in zip(axes, sizes):
            full_scale[a] = int(s) / x.shape[a]
            out[a] = int(s)
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            scale = pick(full_scale[a] for a in axes)
            for a in axes:
                full_scale[a] = scale
                out[a] = int(scale * x.shape[a] + 0.5)
    else:
        for a, s in zip(axes, scales):
            full_scale[a] = float(s)
            out[a] = int(math.floor(float(s) * x.shape[a]))
    roi_full = None
    if roi is not None and len(roi):
        roi = [float(r) for r in roi]
        roi_full = [[0.0, 1.0] for _ in range(rank)]
        for k, a in enumerate(axes):
            roi_full[a] = [roi[k], roi[k + len(axes)]]
    for a in axes:
        r = roi_full[a] if roi_full is not None else (0.0, 1.0)
        if math.isclose(full_scale[a], 1.0) and out[a] == x.shape[a] and tuple(r) == (0.0, 1.0):
            continue
        x = resize_axis(x, a, out[a], full_scale[a], roi=r, **how)
    return x
