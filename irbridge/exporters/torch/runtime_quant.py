"""Quantized ops computed exactly as onnxruntime computes them: division by the scale in
float32, round half to even, saturation to the integer type; integer products accumulated
exactly (in float64, exact below 2**53), requantized with one float32 multiplier."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _per_axis(t, x, axis):
    """A scale or zero point broadcast against x: scalar, or 1-D along `axis`."""
    if t.dim() == 0 or t.numel() == 1:
        return t.reshape(())
    shape = [1] * x.dim()
    shape[axis % x.dim()] = -1
    return t.reshape(shape)


def _saturate(v, dtype):
    info = torch.iinfo(dtype)
    return v.clamp(info.min, info.max).to(dtype)


def quantize_linear(x, scale, zero_point=None, axis=1, dtype=torch.uint8):
    """ONNX QuantizeLinear: saturate(round(x / scale) + zero_point)."""
    s = _per_axis(scale, x, axis).to(torch.float32)
    zp = 0 if zero_point is None else _per_axis(zero_point, x, axis).to(torch.float32)
    return _saturate(torch.round(x.to(torch.float32) / s) + zp, dtype)


def dequantize_linear(x, scale, zero_point=None, axis=1):
    """ONNX DequantizeLinear: (x - zero_point) * scale, in the scale's type."""
    s = _per_axis(scale, x, axis)
    zp = 0 if zero_point is None else _per_axis(zero_point, x, axis).to(torch.int32)
    return ((x.to(torch.int32) - zp).to(s.dtype)) * s


def requantize(acc, multiplier, zero_point, dtype):
    """int32 accumulator -> saturate(round(acc * multiplier) + zero_point)."""
    return _saturate(torch.round(acc.to(torch.float32) * multiplier) + zero_point.to(torch.float32), dtype)


def qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
    """ONNX QLinearMatMul (per-tensor or per-column b scales)."""
    acc = (a.double() - a_zp.double()) @ (b.double() - b_zp.double().reshape(-1) if b_zp.numel() > 1
                                          else b.double() - b_zp.double())
    multiplier = (a_scale.float() * b_scale.float()) / y_scale.float()
    return requantize(acc, multiplier, y_zp, y_zp.dtype)


def qlinear_conv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None, stride=1, padding=0,
                 dilation=1, groups=1, pads=None):
    """ONNX QLinearConv: an exact integer convolution, requantized per output channel."""
    conv = (F.conv1d, F.conv2d, F.conv3d)[x.dim() - 3]
    xd = x.double() - x_zp.double()
    if pads is not None:
        xd = F.pad(xd, pads)
    wzp = w_zp.double().reshape(-1, *([1] * (w.dim() - 1))) if w_zp.numel() > 1 else w_zp.double()
    acc = conv(xd, w.double() - wzp, None, stride, padding, dilation, groups)
    shape = [1, -1] + [1] * (x.dim() - 2)
    if bias is not None:
        acc = acc + bias.double().reshape(shape)
    multiplier = (x_scale.float() * w_scale.float().reshape(-1)) / y_scale.float()
    return requantize(acc, multiplier.reshape(shape) if multiplier.numel() > 1 else multiplier, y_zp, y_zp.dtype)


def dynamic_quantize_linear(x):
    """ONNX DynamicQuantizeLinear: uint8 with a scale and zero point from x's range (incl. 0)."""
    lo, hi = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    scale = (hi - lo) / 255
    zp = _saturate(torch.round(-lo / scale), torch.uint8) if scale != 0 else torch.tensor(0, dtype=torch.uint8)
    y = quantize_linear(x, scale if scale != 0 else torch.tensor(1.0), zp, dtype=torch.uint8)
    return y, scale, zp
