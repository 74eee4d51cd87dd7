"""Sliding-window geometry shared by the exporters: ONNX pads resolved from auto_pad."""

from __future__ import annotations

import dataclasses

from ._registry import Unsupported


@dataclasses.dataclass
class Window:
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


def same_pads(sizes, kernel, strides, dilations, upper: bool = True) -> list[int]:
    """auto_pad SAME_UPPER/SAME_LOWER (and TF's 'same'): spatial pads [b0, b1, ..., e0, e1, ...].
    torch/runtime.py keeps a twin: its helpers are copied into the generated model.py, which must
    not import irbridge."""
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-int(size) // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - int(size))
        small, big = total // 2, total - total // 2
        begins.append(small if upper else big)
        ends.append(big if upper else small)
    return begins + ends


def window(ctx, kernel: list[int]) -> Window:
    """The window of a Conv/pool node (ctx: any converter context with attr() and shape())."""
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
