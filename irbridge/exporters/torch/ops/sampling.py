"""GridSample as `F.grid_sample` (the same kernel onnxruntime implements: bilinear, nearest with
round-half-to-even, bicubic with a = -0.75; zeros, border and reflection padding)."""

from __future__ import annotations

import torch.nn.functional as F

from ..registry import Unsupported, converter

# opset 16 names the modes bilinear/bicubic; opset 20 linear/cubic
_MODES = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest", "bicubic": "bicubic",
          "cubic": "bicubic"}


def _text(v, default):
    v = default if v is None else v
    return v.decode() if isinstance(v, bytes) else v


@converter("GridSample", since=16)
def grid_sample(ctx):
    mode = _MODES.get(_text(ctx.attr("mode"), "linear" if ctx.opset >= 20 else "bilinear"))
    padding = _text(ctx.attr("padding_mode"), "zeros")
    if mode is None or padding not in ("zeros", "border", "reflection"):
        raise Unsupported(f"GridSample mode {ctx.attr('mode')!r} / padding_mode {padding!r}")
    rank = ctx.rank(0)
    if rank not in (4, 5):
        raise Unsupported(f"GridSample of a rank-{rank} input: torch samples 4-D and 5-D inputs")
    if rank == 5 and mode == "bicubic":
        raise Unsupported("volumetric (5-D) cubic GridSample: torch has no bicubic 3-D sampling")
    return ctx.call(F.grid_sample, ctx.x(0), ctx.x(1), mode=mode, padding_mode=padding,
                    align_corners=bool(ctx.attr("align_corners", 0)))
