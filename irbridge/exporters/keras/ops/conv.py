"""Conv -> Conv2D / DepthwiseConv2D (grouped Conv2D), ConvTranspose -> Conv2DTranspose."""

from __future__ import annotations

import keras

from ....passes.assign_nhwc import channels_last
from ..._window import same_pads, window
from ..registry import Unsupported, converter


def _padding(ctx, win, sizes):
    """('same' | 'valid', ZeroPadding2D pads or None) for a stride-aware exact match."""
    t, l_, b, r = win.pads[0], win.pads[1], win.pads[2], win.pads[3]
    if not any(win.pads):
        return "valid", None
    if sizes is not None and all(s == 1 for s in win.strides) \
            and win.pads == same_pads(sizes, win.kernel, win.strides, win.dilations):
        return "same", None
    return "valid", ((t, b), (l_, r))


@converter("Conv")
def conv(ctx):
    w, b = ctx.const(1), ctx.const(2)
    if w is None or (ctx.has_input(2) and b is None):
        raise Unsupported("weights computed at run time")
    if w.ndim != 4:
        raise Unsupported(f"{w.ndim - 2}-D convolution (the Keras exporter handles 2-D)")
    win = window(ctx, list(w.shape[2:]))
    if win.pads is None:
        raise Unsupported("auto_pad SAME with an unknown input size")
    if any(s > 1 for s in win.strides) and any(d > 1 for d in win.dilations):
        raise Unsupported("strides and dilations together (Keras allows one or the other)")
    group = ctx.attr("group", 1)
    x = ctx.x(0, channels_last(4))
    shape = ctx.shape(0)
    padding, zero_pad = _padding(ctx, win, shape[2:] if shape else None)
    if zero_pad is not None:
        x = ctx.layer(keras.layers.ZeroPadding2D, x, padding=zero_pad, name_suffix="_pad")
    common = dict(kernel_size=tuple(w.shape[2:]), strides=tuple(win.strides), padding=padding,
                  dilation_rate=tuple(win.dilations), use_bias=b is not None,
                  activation=ctx.fused_activation())
    c_in = w.shape[1] * group
    if group > 1 and group == c_in and w.shape[1] == 1:
        mult = w.shape[0] // c_in
        kernel = w.reshape(c_in, mult, *w.shape[2:]).transpose(2, 3, 0, 1)
        weights = [kernel] + ([b] if b is not None else [])
        return ctx.layer(keras.layers.DepthwiseConv2D, x, weights=weights, depth_multiplier=mult, **common)
    weights = [w.transpose(2, 3, 1, 0)] + ([b] if b is not None else [])
    return ctx.layer(keras.layers.Conv2D, x, weights=weights, filters=w.shape[0], groups=group, **common)


@converter("ConvTranspose")
def conv_transpose(ctx):
    w, b = ctx.const(1), ctx.const(2)
    if w is None or (ctx.has_input(2) and b is None) or w.ndim != 4:
        raise Unsupported("a 2-D ConvTranspose with constant weights is what Keras can hold")
    if ctx.attr("group", 1) != 1 or ctx.attr("output_shape") is not None \
            or ctx.attr("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise Unsupported("groups, output_shape or auto_pad SAME on ConvTranspose")
    strides = list(ctx.attr("strides", [1, 1]))
    dil = list(ctx.attr("dilations", [1, 1]))
    out_pad = list(ctx.attr("output_padding", [0, 0]))
    pads = list(ctx.attr("pads", [0, 0, 0, 0]))
    x = ctx.x(0, channels_last(4))
    y = ctx.layer(keras.layers.Conv2DTranspose, x,
                  weights=[w.transpose(2, 3, 1, 0)] + ([b] if b is not None else []),
                  filters=w.shape[1], kernel_size=tuple(w.shape[2:]), strides=tuple(strides),
                  padding="valid", output_padding=tuple(out_pad) if any(out_pad) else None,
                  dilation_rate=tuple(dil), use_bias=b is not None)
    if any(pads):
        y = ctx.layer(keras.layers.Cropping2D, y, cropping=((pads[0], pads[2]), (pads[1], pads[3])),
                      name_suffix="_crop")
    return y
