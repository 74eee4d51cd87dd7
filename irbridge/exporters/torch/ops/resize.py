"""Resize and Upsample -> nn.Upsample / F.interpolate where torch's kernel is ONNX's
(nearest-asymmetric-floor, linear half_pixel / align_corners, bicubic half_pixel), else the
exact separable helper runtime_resize.onnx_resize."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .. import runtime_resize as rt
from ..registry import converter

_LINEAR = {3: "linear", 4: "bilinear", 5: "trilinear"}


def _text(v, default):
    v = default if v is None else v
    return v.decode() if isinstance(v, bytes) else v


def _how(ctx, opset_default_coord="half_pixel"):
    return {
        "mode": _text(ctx.attr("mode"), "nearest"),
        "coord": _text(ctx.attr("coordinate_transformation_mode"), opset_default_coord),
        "cubic_a": ctx.attr("cubic_coeff_a", -0.75),
        "exclude_outside": ctx.attr("exclude_outside", 0),
        "extrapolation": ctx.attr("extrapolation_value", 0.0),
        "nearest_mode": _text(ctx.attr("nearest_mode"), "round_prefer_floor"),
        "antialias": ctx.attr("antialias", 0),
    }


def _torch_mode(how, rank, spatial_scales):
    """The F.interpolate mode (and align_corners) that computes exactly this Resize, or None."""
    mode, coord = how["mode"], how["coord"]
    if how["antialias"] or how["exclude_outside"]:
        return None
    if mode == "nearest":
        whole = spatial_scales is None or all(float(s).is_integer() and s >= 1 for s in spatial_scales)
        if coord == "asymmetric" and how["nearest_mode"] == "floor" and whole:
            return "nearest", None
        return None
    grows = spatial_scales is not None and all(s >= 1 for s in spatial_scales)
    ok_coord = coord == "half_pixel" or (coord == "pytorch_half_pixel" and grows)
    if mode == "linear" and rank in _LINEAR and (ok_coord or coord == "align_corners"):
        return _LINEAR[rank], coord == "align_corners"
    if mode == "cubic" and rank == 4 and how["cubic_a"] == -0.75 and (ok_coord or coord == "align_corners"):
        return "bicubic", coord == "align_corners"
    return None


def _resize(ctx, roi_i, scales_i, sizes_i, how):
    rank = ctx.rank(0)
    axes = ctx.attr("axes", None)
    policy = _text(ctx.attr("keep_aspect_ratio_policy"), "stretch")
    scales = ctx.const(scales_i) if scales_i is not None and ctx.has_input(scales_i) else None
    if scales is not None and scales.size == 0:
        scales = None
    sizes = ctx.sizes(sizes_i) if sizes_i is not None and ctx.has_input(sizes_i) else None
    roi = ctx.const(roi_i) if roi_i is not None and ctx.has_input(roi_i) else None
    plain = axes is None and policy == "stretch" and how["coord"] != "tf_crop_and_resize" and rank is not None
    if plain and scales is not None and len(scales) == rank and list(scales[:2]) == [1, 1]:
        spatial = [float(s) for s in scales[2:]]
        chosen = _torch_mode(how, rank, spatial)
        if chosen is not None:
            mode, align = chosen
            factor = spatial[0] if len(set(spatial)) == 1 else tuple(spatial)
            kwargs = {} if align is None else {"align_corners": align}
            return ctx.call_module(nn.Upsample, ctx.x(0), scale_factor=factor, mode=mode, **kwargs)
    if plain and sizes is not None and scales is None and len(sizes) == rank \
            and all(sizes[k] is ctx.dim(0, k) or sizes[k] == ctx.dim(0, k) for k in (0, 1)):
        chosen = _torch_mode(how, rank, None)
        if chosen is not None and (chosen[0] == "nearest" or how["coord"] != "pytorch_half_pixel"):
            mode, align = chosen
            kwargs = {} if align is None else {"align_corners": align}
            return ctx.call(F.interpolate, ctx.x(0), size=tuple(sizes[2:]), mode=mode, **kwargs)
    scales_arg = [float(s) for s in scales] if scales is not None else (
        None if scales_i is None or not ctx.has_input(scales_i) or sizes_i is not None and ctx.has_input(sizes_i)
        else ctx.method("tolist", ctx.x(scales_i)))
    sizes_arg = None
    if sizes_i is not None and ctx.has_input(sizes_i):
        sizes_arg = sizes if sizes is not None else ctx.method("tolist", ctx.x(sizes_i))
    roi_arg = None
    if how["coord"] == "tf_crop_and_resize" and roi_i is not None and ctx.has_input(roi_i):
        roi_arg = [float(r) for r in roi.reshape(-1)] if roi is not None else ctx.method("tolist", ctx.x(roi_i))
    return ctx.call(rt.onnx_resize, ctx.x(0), roi_arg, scales_arg, sizes_arg, axes, policy, **how)


@converter("Resize", since=11)
def resize(ctx):
    return _resize(ctx, 1, 2, 3, _how(ctx))


@converter("Resize", since=10)
def resize_10(ctx):
    return _resize(ctx, None, 1, None, _how(ctx, "asymmetric"))


@converter("Upsample", since=9)
def upsample(ctx):
    how = _how(ctx, "asymmetric")
    how["nearest_mode"] = "floor"
    return _resize(ctx, None, 1, None, how)
