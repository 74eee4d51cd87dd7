"""Attribute helpers shared by the conv and pooling converters."""

from __future__ import annotations

import dataclasses

from ..registry import Unsupported
from ..runtime import same_pads


@dataclasses.dataclass
class Window:
    """A sliding window's geometry, with ONNX pads resolved as far as shapes allow."""

    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    pads: list[int] | None  # ONNX order [b0, b1, ..., e0, e1, ...]; None: SAME at run time
    same_upper: bool = True

    @property
    def symmetric(self) -> bool:
        n = len(self.kernel)
        return self.pads is not None and self.pads[:n] == self.pads[n:]

    @property
    def padding(self) -> tuple[int, ...]:
        return tuple(self.pads[: len(self.kernel)])


def window(ctx, kernel: list[int]) -> Window:
    n = len(kernel)
    strides = list(ctx.attr("strides", [1] * n))
    dilations = list(ctx.attr("dilations", [1] * n))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad in ("NOTSET", ""):
        pads = list(ctx.attr("pads", [0] * (2 * n)))
    elif auto_pad == "VALID":
        pads = [0] * (2 * n)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        upper = auto_pad == "SAME_UPPER"
        shape = ctx.shape(0)
        if shape is None or any(d is None for d in shape[2:]):
            return Window(kernel, strides, dilations, None, upper)
        pads = same_pads(shape[2:], kernel, strides, dilations, upper)
    else:
        raise Unsupported(f"auto_pad={auto_pad!r}")
    return Window(kernel, strides, dilations, pads)


def full_pads(spatial_pads: list[int]) -> list[int]:
    """Spatial ONNX pads -> pads over (N, C, *spatial) for runtime.onnx_pad."""
    n = len(spatial_pads) // 2
    return [0, 0] + list(spatial_pads[:n]) + [0, 0] + list(spatial_pads[n:])
