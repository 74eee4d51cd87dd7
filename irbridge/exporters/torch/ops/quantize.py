"""QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, QLinearConv,
computed exactly as onnxruntime computes them (runtime_quant.py)."""

from __future__ import annotations

import onnx_ir as ir
import torch

from .. import runtime_quant as rt
from ..builder import TORCH_DTYPES
from ..registry import Unsupported, converter
from ._common import window


def _no_blocks(ctx):
    if ctx.attr("block_size", 0):
        raise Unsupported("blocked quantization (block_size)")


@converter("QuantizeLinear", since=10)
def quantize_linear(ctx):
    _no_blocks(ctx)
    dtype = ctx.dtype(2) if ctx.has_input(2) else None
    to = ctx.attr("output_dtype", 0)
    if to:
        dtype = TORCH_DTYPES.get(ir.DataType(to))
    dtype = dtype or torch.uint8
    if dtype.is_floating_point or dtype == torch.bool:
        raise Unsupported(f"quantization to {dtype}")
    return ctx.call(rt.quantize_linear, ctx.x(0), ctx.x(1), ctx.x(2), ctx.attr("axis", 1), dtype)


@converter("DequantizeLinear", since=10)
def dequantize_linear(ctx):
    _no_blocks(ctx)
    return ctx.call(rt.dequantize_linear, ctx.x(0), ctx.x(1), ctx.x(2), ctx.attr("axis", 1))


@converter("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx):
    return ctx.split(ctx.call(rt.dynamic_quantize_linear, ctx.x(0)), 3)


@converter("QLinearMatMul", since=10)
def qlinear_matmul(ctx):
    return ctx.call(rt.qlinear_matmul, *[ctx.x(i) for i in range(8)])


@converter("QLinearConv", since=10)
def qlinear_conv(ctx):
    w_shape = ctx.shape(3)
    if w_shape is None or None in w_shape:
        raise Unsupported("QLinearConv with a weight of unknown shape")
    kernel = list(ctx.attr("kernel_shape", None) or w_shape[2:])
    win = window(ctx, kernel)
    if win.pads is None:
        raise Unsupported("QLinearConv with auto_pad SAME")
    n = len(kernel)
    torch_pads = None
    padding = tuple(win.padding) if win.symmetric else 0
    if not win.symmetric:
        torch_pads = [p for d in reversed(range(n)) for p in (win.pads[d], win.pads[d + n])]
    return ctx.call(rt.qlinear_conv, *[ctx.x(i) for i in range(8)], ctx.x(8), tuple(win.strides), padding,
                    tuple(win.dilations), ctx.attr("group", 1), torch_pads)
