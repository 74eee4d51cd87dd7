"""Conv and ConvTranspose -> nn.ConvNd / nn.ConvTransposeNd."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .. import runtime
from ..registry import Unsupported, converter
from ._common import full_pads, window

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_CONV_F = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T_F = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@converter("Conv")
def conv(ctx):
    w = ctx.const(1)
    b = ctx.const(2)
    if b is not None and b.dtype.kind == "f" and not b.any() and not ctx.value(2).name.endswith("bias"):
        # an all-zero bias computed by the graph (unoptimized dynamo exports spell bias=False so):
        # a conv without one. A stored parameter (`layer1.bias`) stays, zero or not: the
        # checkpoint has it
        b, skip_bias = None, True
    else:
        skip_bias = False
    kernel = list(ctx.attr("kernel_shape", None) or (w.shape[2:] if w is not None else ctx.shape(1)[2:]))
    n = len(kernel)
    if n not in _CONV:
        raise Unsupported(f"{n}-D convolution")
    win = window(ctx, kernel)
    group = ctx.attr("group", 1)
    x = ctx.x(0)
    padding = win.padding if win.symmetric else 0
    if win.pads is None:
        x = ctx.call(runtime.pad_same, x, kernel, win.strides, win.dilations, win.same_upper)
    elif not win.symmetric:
        x = ctx.call(runtime.onnx_pad, x, full_pads(win.pads))
    if w is None or (ctx.has_input(2) and b is None and not skip_bias):
        return ctx.call(_CONV_F[n], x, ctx.x(1), ctx.x(2), tuple(win.strides), padding,
                        tuple(win.dilations), group)
    params = {"weight": w} if b is None else {"weight": w, "bias": b}
    return ctx.call_module(
        _CONV[n], x, params=params,
        in_channels=w.shape[1] * group, out_channels=w.shape[0], kernel_size=tuple(kernel),
        stride=tuple(win.strides), padding=padding, dilation=tuple(win.dilations),
        groups=group, bias=b is not None,
    )


@converter("ConvTranspose")
def conv_transpose(ctx):
    w, b = ctx.const(1), ctx.const(2)
    w_shape = w.shape if w is not None else ctx.shape(1)
    if w_shape is None or None in w_shape:
        raise Unsupported("ConvTranspose with a weight of unknown shape")
    kernel = list(ctx.attr("kernel_shape", None) or w_shape[2:])
    n = len(kernel)
    if n not in _CONV_T:
        raise Unsupported(f"{n}-D transposed convolution")
    strides = list(ctx.attr("strides", [1] * n))
    dilations = list(ctx.attr("dilations", [1] * n))
    out_pad = list(ctx.attr("output_padding", [0] * n))
    group = ctx.attr("group", 1)
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    output_shape = ctx.attr("output_shape", None)
    pads = list(ctx.attr("pads", [0] * (2 * n)))
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        shape = ctx.shape(0)
        if shape is None or any(d is None for d in shape[2:]):
            raise Unsupported("output_shape/auto_pad SAME with an unknown input size")
        sizes = shape[2:]
        target = list(output_shape)[-n:] if output_shape is not None else [s * st for s, st in zip(sizes, strides)]
        pads, out_pad = [], []
        begins, ends = [], []
        for i in range(n):
            full = strides[i] * (sizes[i] - 1) + (kernel[i] - 1) * dilations[i] + 1
            total = full - target[i]
            extra = max(0, -total)
            total = max(0, total)
            if auto_pad == "SAME_UPPER":
                begins.append(total // 2)
                ends.append(total - total // 2)
            else:
                begins.append(total - total // 2)
                ends.append(total // 2)
            out_pad.append(extra)
        pads = begins + ends
    elif auto_pad == "VALID":
        pads = [0] * (2 * n)
    sym = [min(pads[i], pads[i + n]) for i in range(n)]
    if any(o >= max(s, d) for o, s, d in zip(out_pad, strides, dilations)):
        raise Unsupported(f"output_padding {out_pad} not smaller than stride or dilation")
    if w is None or (ctx.has_input(2) and b is None):
        y = ctx.call(_CONV_T_F[n], ctx.x(0), ctx.x(1), ctx.x(2), tuple(strides), tuple(sym),
                     tuple(out_pad), group, tuple(dilations))
    else:
        y = ctx.call_module(
            _CONV_T[n], ctx.x(0), params={"weight": w} if b is None else {"weight": w, "bias": b},
            in_channels=w.shape[0], out_channels=w.shape[1] * group, kernel_size=tuple(kernel),
            stride=tuple(strides), padding=tuple(sym), output_padding=tuple(out_pad), groups=group,
            bias=b is not None, dilation=tuple(dilations),
        )
    if sym != pads[:n] or sym != pads[n:]:
        crop = [pads[i] - sym[i] for i in range(n)] + [pads[i + n] - sym[i] for i in range(n)]
        y = ctx.call(runtime.onnx_pad, y, full_pads([-c for c in crop]))
    return y
