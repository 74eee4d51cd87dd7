"""Conv -> Conv1D/2D/3D, DepthwiseConv1D/2D (or grouped ConvND); ConvTranspose -> Conv1D/2D/3DTranspose.

ONNX pads are reproduced exactly: symmetric or asymmetric pads become a ZeroPaddingND layer
before a 'valid' convolution (or Keras' 'same' where it is the very same padding); the pads of a
ConvTranspose crop its full output (CroppingND). Every rank Keras has a layer for is handled.
"""

from __future__ import annotations

import keras

from ....passes.assign_nhwc import channels_last
from ..._window import same_pads, window
from ..registry import Unsupported, converter
from .tensor import with_sizes

CONV = {1: "Conv1D", 2: "Conv2D", 3: "Conv3D"}
DEPTHWISE = {1: "DepthwiseConv1D", 2: "DepthwiseConv2D"}
TRANSPOSE = {1: "Conv1DTranspose", 2: "Conv2DTranspose", 3: "Conv3DTranspose"}
ZERO_PAD = {1: "ZeroPadding1D", 2: "ZeroPadding2D", 3: "ZeroPadding3D"}
CROP = {1: "Cropping1D", 2: "Cropping2D", 3: "Cropping3D"}


def keras_layer(table: dict, n: int):
    if n not in table:
        raise Unsupported(f"{n}-D windows (Keras has {', '.join(f'{k}-D' for k in table)})")
    return getattr(keras.layers, table[n])


def pairs(pads: list[int]) -> tuple:
    """ONNX [b0, b1, ..., e0, e1, ...] -> Keras ((b0, e0), (b1, e1), ...) (a bare pair in 1-D)."""
    n = len(pads) // 2
    out = tuple((pads[i], pads[n + i]) for i in range(n))
    return out[0] if n == 1 else out


def zero_pad(ctx, x, pads: list[int]):
    """x zero-padded by ONNX-ordered spatial pads (no layer when they are all zero)."""
    if not any(pads):
        return x
    n = len(pads) // 2
    return ctx.layer(keras_layer(ZERO_PAD, n), x, padding=pairs(pads), name_suffix="_pad")


def _padding(win):
    """('same' | 'valid', the ONNX pads still to apply with a ZeroPadding layer)."""
    if not any(win.pads):
        return "valid", []
    if all(s == 1 for s in win.strides) and win.pads == same_pads(
            [16] * len(win.kernel), win.kernel, win.strides, win.dilations):  # stride 1: any size's pads
        return "same", []
    return "valid", list(win.pads)


@converter("Conv")
def conv(ctx):
    w, b = ctx.const(1), ctx.const(2)
    if w is None or (ctx.has_input(2) and b is None):
        raise Unsupported("weights computed at run time")
    n = w.ndim - 2
    keras_layer(CONV, n)
    win = window(ctx, list(w.shape[2:]))
    if win.pads is None and not win.same_upper:  # Keras's 'same' (TF's SAME) pads the extra at the end
        raise Unsupported("auto_pad SAME_LOWER with an unknown input size")
    if any(s > 1 for s in win.strides) and any(d > 1 for d in win.dilations):
        raise Unsupported("strides and dilations together (Keras allows one or the other)")
    group = ctx.attr("group", 1)
    x = with_sizes(ctx, ctx.x(0, channels_last(n + 2)), {n + 1: w.shape[1] * group})  # SegFormer's decode head
    padding, pads = ("same", []) if win.pads is None else _padding(win)  # SAME_UPPER at a free size: 'same'
    x = zero_pad(ctx, x, pads)
    common = dict(kernel_size=tuple(w.shape[2:]), strides=tuple(win.strides), padding=padding,
                  dilation_rate=tuple(win.dilations), use_bias=b is not None,
                  activation=ctx.fused_activation())
    spatial = tuple(range(2, n + 2))
    c_in = w.shape[1] * group
    if group > 1 and group == c_in and w.shape[1] == 1 and n in DEPTHWISE:
        mult = w.shape[0] // c_in
        kernel = w.reshape(c_in, mult, *w.shape[2:]).transpose(*spatial, 0, 1)
        weights = [kernel] + ([b] if b is not None else [])
        return ctx.layer(keras_layer(DEPTHWISE, n), x, weights=weights, depth_multiplier=mult, **common)
    weights = [w.transpose(*spatial, 1, 0)] + ([b] if b is not None else [])
    return ctx.layer(keras_layer(CONV, n), x, weights=weights, filters=w.shape[0], groups=group, **common)


def _transpose_pads(ctx, w, strides, dil, out_pad) -> list[int]:
    """The pads of a ConvTranspose: given, or derived from output_shape / auto_pad SAME."""
    n = w.ndim - 2
    kernel = list(w.shape[2:])
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    output_shape = ctx.attr("output_shape")
    if output_shape is None and auto_pad in ("NOTSET", "", "VALID"):
        return list(ctx.attr("pads", [0] * 2 * n)) if auto_pad != "VALID" else [0] * 2 * n
    shape = ctx.shape(0)
    if shape is None or None in shape[2:]:
        raise Unsupported("output_shape or auto_pad SAME on ConvTranspose of an input whose size is not known")
    sizes = list(shape[2:])
    if output_shape is None:  # SAME: the output is the input times the stride
        output_shape = [s * st for s, st in zip(sizes, strides)]
    output_shape = list(output_shape)[-n:]
    totals = [st * (i - 1) + op + (k - 1) * d + 1 - o
              for st, i, op, k, d, o in zip(strides, sizes, out_pad, kernel, dil, output_shape)]
    if any(t < 0 for t in totals):
        raise Unsupported("a ConvTranspose output_shape larger than its full output")
    if auto_pad == "SAME_UPPER":
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    return [t - t // 2 for t in totals] + [t // 2 for t in totals]  # SAME_LOWER, or output_shape


@converter("ConvTranspose")
def conv_transpose(ctx):
    w, b = ctx.const(1), ctx.const(2)
    if w is None or (ctx.has_input(2) and b is None):
        raise Unsupported("weights computed at run time")
    n = w.ndim - 2
    cls = keras_layer(TRANSPOSE, n)
    if ctx.attr("group", 1) != 1:
        raise Unsupported("groups on ConvTranspose (Keras' ConvNDTranspose has none)")
    strides = list(ctx.attr("strides", [1] * n))
    dil = list(ctx.attr("dilations", [1] * n))
    if any(s > 1 for s in strides) and any(d > 1 for d in dil):
        raise Unsupported("strides and dilations together (Keras allows one or the other)")
    out_pad = list(ctx.attr("output_padding", [0] * n))
    if any(p >= s for p, s in zip(out_pad, strides)):
        raise Unsupported("output_padding not below the stride")
    pads = _transpose_pads(ctx, w, strides, dil, out_pad)
    x = ctx.x(0, channels_last(n + 2))
    spatial = tuple(range(2, n + 2))
    y = ctx.layer(cls, x, weights=[w.transpose(*spatial, 1, 0)] + ([b] if b is not None else []),
                  filters=w.shape[1], kernel_size=tuple(w.shape[2:]), strides=tuple(strides),
                  padding="valid", output_padding=tuple(out_pad) if any(out_pad) else None,
                  dilation_rate=tuple(dil), use_bias=b is not None)
    if any(pads):
        y = ctx.layer(keras_layer(CROP, n), y, cropping=pairs(pads), name_suffix="_crop")
    return y
