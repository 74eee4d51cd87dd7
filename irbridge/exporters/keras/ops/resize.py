"""Resize / Upsample -> UpSampling1D/2D/3D or Resizing where one is exact, else the registered
`irbridge.keras_layers.Resize` (keras.ops, onnxruntime's semantics for every mode).

Standard layers are used only where they compute exactly what ONNX asks (channels-last data,
spatial axes only):
- UpSamplingND (nearest): integer scales, with a coordinate transform and rounding that pick
  input floor(i / scale) (half_pixel with any rounding, asymmetric or tf_half_pixel_for_nn
  with floor);
- UpSampling2D(interpolation="bilinear"): integer scales, linear, half_pixel (TF's resize);
- Resizing(h, w, "bilinear"): constant output sizes, linear, half_pixel, no antialiasing.
Output sizes read from other tensors' shapes (`F.interpolate(x, size=skip.shape[2:])`) or
computed from free dims stay live.
"""

from __future__ import annotations

import keras
import numpy as np

from .... import keras_layers
from ....passes.assign_nhwc import channels_last
from ..builder import Held
from ..registry import Unsupported, converter

HALF_PIXEL = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric")


def _size_entries(v):
    """Entries of a sizes input: ints, ('dim', value, axis) read live, or None (unknown)."""
    try:
        from .tensor import shape_entries
    except ImportError:  # pragma: no cover - the tensor ops module is the usual reader
        shape_entries = None
    if v.const_value is not None and not v.is_graph_input():
        return [int(s) for s in v.const_value.numpy().reshape(-1)]
    return shape_entries(v) if shape_entries is not None else None


class Plan:
    """What a Resize node does per ONNX axis: {axis: (scale | None, size int | ('dim', v, a) | None)}."""

    def __init__(self, ctx, upsample: bool = False):
        rank = ctx.rank(0)
        shape = ctx.shape(0)
        self.live = {}  # "scales" / "sizes" / "roi" -> the graph value read at run time
        if rank is None or shape is None:
            raise Unsupported("a resize of a tensor of unknown rank")
        self.rank, self.shape = rank, shape
        opset = ctx.b.opset
        if upsample:
            scales = ctx.attr("scales") or (ctx.const(1).tolist() if ctx.has_input(1) and ctx.const(1) is not None
                                            else None)
            if scales is None:
                raise Unsupported("scales computed at run time")
            self.mode = ctx.attr("mode", "nearest")
            self.ctm, self.nearest_mode = "asymmetric", "floor"
            sizes, roi = None, None
        else:
            k_scales = 1 if opset < 11 else 2
            scales = ctx.const(k_scales) if ctx.has_input(k_scales) else None
            if ctx.has_input(k_scales) and scales is None:
                self._live(ctx, "scales", k_scales)
            scales = scales.tolist() if scales is not None and scales.size else None
            sizes = None
            if opset >= 11 and ctx.has_input(3):
                sizes = _size_entries(ctx.node.inputs[3])
                if sizes is None or None in sizes:
                    sizes = self._live(ctx, "sizes", 3)
            roi = ctx.const(1) if opset >= 11 and ctx.has_input(1) else None
            if roi is None and opset >= 11 and ctx.has_input(1) and \
                    ctx.attr("coordinate_transformation_mode") == "tf_crop_and_resize":
                self._live(ctx, "roi", 1)
            self.mode = ctx.attr("mode", "nearest")
            self.ctm = ctx.attr("coordinate_transformation_mode", "asymmetric" if opset < 11 else "half_pixel")
            self.nearest_mode = ctx.attr("nearest_mode", "floor" if opset < 11 else "round_prefer_floor")
        axes = [a % rank for a in ctx.attr("axes", list(range(rank)))]
        n = len(axes)
        self.antialias = bool(ctx.attr("antialias", 0))
        self.cubic_coeff_a = ctx.attr("cubic_coeff_a", -0.75)
        self.exclude_outside = bool(ctx.attr("exclude_outside", 0))
        self.extrapolation_value = ctx.attr("extrapolation_value", 0.0)
        if self.mode not in ("nearest", "linear", "cubic"):
            raise Unsupported(f"mode {self.mode!r}")
        if "roi" in self.live:
            roi = [(("roi", i), ("roi", n + i)) for i in range(n)]
        elif roi is not None and self.ctm == "tf_crop_and_resize":
            roi = roi.reshape(-1).tolist()
            roi = [(float(roi[i]), float(roi[n + i])) for i in range(n)]
        elif self.ctm == "tf_crop_and_resize":
            raise Unsupported("tf_crop_and_resize without a constant roi")
        else:
            roi = [None] * n
        if sizes is not None and "sizes" not in self.live:
            sizes, scales = self._policy(ctx, axes, sizes)
        self.axes = {}
        if self.live:
            if self.antialias or ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
                raise Unsupported("antialias or an aspect ratio policy with scales or sizes given at run time")
            for i, a in enumerate(axes):  # every axis may change: each read at run time
                self.axes[a] = (("scales", i) if "scales" in self.live else None,
                                ("sizes", i) if "sizes" in self.live else None, roi[i])
            return
        for i, a in enumerate(axes):
            scale = float(np.float32(scales[i])) if scales is not None else None
            size = sizes[i] if sizes is not None else None
            if scale is None and isinstance(size, int) and isinstance(shape[a], int):
                scale = float(np.float32(size) / np.float32(shape[a]))
            same = (scale == 1.0 and size is None) or (size is not None and size == shape[a]) or \
                (isinstance(size, tuple) and size[1] is ctx.node.inputs[0] and size[2] == a)
            if not same or (self.ctm == "tf_crop_and_resize" and roi[i] != (0.0, 1.0)):
                self.axes[a] = (scale, size, roi[i])

    def _live(self, ctx, key, k):
        v = ctx.node.inputs[k]
        if v.name not in ctx.b.env:
            raise Unsupported(f"{key} computed at run time from an unconverted value")
        self.live[key] = v
        return None

    def _policy(self, ctx, axes, sizes):
        """keep_aspect_ratio_policy: one scale for every axis (static sizes only)."""
        policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            return sizes, None
        ins = [self.shape[a] for a in axes]
        if not all(isinstance(s, int) for s in sizes + ins):
            raise Unsupported(f"keep_aspect_ratio_policy {policy!r} with sizes not known before run time")
        ratios = [np.float32(s) / np.float32(i) for s, i in zip(sizes, ins)]
        scale = min(ratios) if policy == "not_larger" else max(ratios)
        return [int(np.floor(np.float32(i) * scale + np.float32(0.5))) for i in ins], [float(scale)] * len(ins)

    def integer_scales(self, spatial):
        """{spatial axis: integer scale >= 1} when every resized axis is such (output = input x k)."""
        out = {}
        for a, (scale, size, _) in self.axes.items():
            if a not in spatial or scale is None or scale < 1 or scale != int(scale):
                return None
            if size is not None and (not isinstance(size, int) or not isinstance(self.shape[a], int)
                                     or size != self.shape[a] * int(scale)):
                return None
            out[a] = int(scale)
        return out


def _nearest_is_floor_div(plan) -> bool:
    """Does nearest resizing by an integer factor pick input floor(i / factor)?"""
    if plan.ctm in HALF_PIXEL:
        return True
    return plan.ctm in ("asymmetric", "tf_half_pixel_for_nn") and plan.nearest_mode == "floor"


def _standard(ctx, plan, x):
    """A standard Keras layer doing exactly this resize of channels-last `x`, or None."""
    n = plan.rank - 2
    spatial = list(range(2, plan.rank))
    factors = plan.integer_scales(spatial)
    if factors is not None and plan.axes:
        size = tuple(factors.get(a, 1) for a in spatial)
        if plan.mode == "nearest" and _nearest_is_floor_div(plan) and n in (1, 2, 3):
            cls = getattr(keras.layers, f"UpSampling{n}D")
            return ctx.layer(cls, x, size=size[0] if n == 1 else size,
                             **({"interpolation": "nearest"} if n == 2 else {}))
        if plan.mode == "linear" and plan.ctm in HALF_PIXEL and n == 2:
            return ctx.layer(keras.layers.UpSampling2D, x, size=size, interpolation="bilinear")
    if plan.mode == "linear" and plan.ctm in ("half_pixel", "half_pixel_symmetric") and n == 2 and plan.axes \
            and set(plan.axes) <= set(spatial):
        sizes = []
        for a in spatial:
            scale, size, _ = plan.axes.get(a, (None, plan.shape[a], None))
            if not isinstance(size, int):
                return None
            known = isinstance(plan.shape[a], int)
            # TF's resize uses out/in as its scale: ONNX does too when given sizes (no scale)
            if scale is not None and (not known or np.float32(scale) != np.float32(size) / np.float32(plan.shape[a])):
                return None
            if plan.antialias and (not known or size < plan.shape[a]):
                return None
            sizes.append(size)
        return ctx.layer(keras.layers.Resizing, x, height=sizes[0], width=sizes[1], interpolation="bilinear")
    return None


def _convert(ctx, upsample=False):
    plan = Plan(ctx, upsample)
    perm = ctx.perm_in(0)
    if not plan.axes:
        return Held(ctx.x(0, perm), perm)
    if len(perm) >= 3 and tuple(perm) == channels_last(plan.rank) and not plan.live:
        y = _standard(ctx, plan, ctx.x(0, perm))
        if y is not None:
            return Held(y, perm)
    inputs, refs, sizes, scales, axes, rois = [ctx.x(0, perm)], [], [], [], [], []
    slot = {}
    for key, v in plan.live.items():  # values read at run time: extra inputs of the layer
        inputs.append(ctx.b.tensor(v, ctx.b.env[v.name][1]))
        slot[key] = len(inputs) - 1

    def spec(x):
        return ["input", slot[x[0]], x[1]] if isinstance(x, tuple) and x and x[0] in slot else x
    for a, (scale, size, roi) in sorted(plan.axes.items(), key=lambda kv: perm.index(kv[0])):
        axes.append(perm.index(a))
        scales.append(spec(scale))
        rois.append([spec(r) for r in roi] if roi is not None else None)
        ref = None
        if isinstance(size, tuple) and size[0] == "dim":
            v, axis = size[1], size[2]
            held = ctx.b.env[v.name][1] if v.name in ctx.b.env else None
            if held is None:
                raise Unsupported(f"an output size read from {v.name!r}, which is not computed before it")
            inputs.append(ctx.b.tensor(v, held))
            ref, size = [len(inputs) - 1, list(held).index(axis)], None
        if plan.antialias and scale is None:
            raise Unsupported("antialiasing with an output size not known before run time")
        refs.append(ref)
        sizes.append(spec(size))
    y = ctx.layer(keras_layers.Resize, *inputs, axes=axes, sizes=sizes, scales=scales, refs=refs, mode=plan.mode,
                  coordinate_transformation_mode=plan.ctm, nearest_mode=plan.nearest_mode,
                  cubic_coeff_a=plan.cubic_coeff_a, exclude_outside=plan.exclude_outside,
                  extrapolation_value=plan.extrapolation_value, roi=rois, antialias=plan.antialias)
    return Held(y, perm)


@converter("Resize", since=10)
def resize(ctx):
    return _convert(ctx)


@converter("Upsample", since=7)
def upsample(ctx):
    return _convert(ctx, upsample=True)
