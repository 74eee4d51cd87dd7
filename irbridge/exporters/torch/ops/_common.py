"""Attribute helpers shared by the conv and pooling converters."""

from __future__ import annotations

from ..._window import Window, window

__all__ = ["Window", "full_pads", "window"]


def full_pads(spatial_pads: list[int]) -> list[int]:
    """Spatial ONNX pads -> pads over (N, C, *spatial) for runtime.onnx_pad."""
    n = len(spatial_pads) // 2
    return [0, 0] + list(spatial_pads[:n]) + [0, 0] + list(spatial_pads[n:])
