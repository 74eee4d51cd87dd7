"""Spectral ops: DFT and STFT with torch.fft (helpers in runtime_spectral.py)."""

from __future__ import annotations

from .. import runtime_spectral as rt
from ..registry import Unsupported, converter


def _scalar(ctx, i):
    """Input i as a Python int when constant, else the graph value (the helper reads it)."""
    c = ctx.ints(i)
    return c[0] if c else ctx.x(i)


@converter("DFT", since=17)
def dft_17(ctx):
    return _dft(ctx, ctx.attr("axis", 1))


@converter("DFT", since=20)
def dft_20(ctx):
    return _dft(ctx, _scalar(ctx, 2) if ctx.has_input(2) else -2)


def _dft(ctx, axis):
    length = _scalar(ctx, 1) if ctx.has_input(1) else None
    inverse, onesided = bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0))
    return ctx.call(rt.onnx_dft, ctx.x(0), length, axis, inverse, onesided)


@converter("STFT", since=17)
def stft(ctx):
    length = _scalar(ctx, 3) if ctx.has_input(3) else None
    if length is None and not ctx.has_input(2):
        raise Unsupported("STFT with neither a window nor a frame_length")
    return ctx.call(rt.onnx_stft, ctx.x(0), _scalar(ctx, 1), ctx.x(2), length, bool(ctx.attr("onesided", 1)))
