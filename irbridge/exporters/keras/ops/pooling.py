"""Pooling -> MaxPooling2D / AveragePooling2D (+ ZeroPadding2D), global pools, exact ONNX pads."""

from __future__ import annotations

import keras

from .... import keras_layers
from ....passes.assign_nhwc import channels_last
from ..._window import same_pads, window
from ..registry import Unsupported, converter

# ops whose output is >= 0 whenever their data inputs are (or always)
_NONNEG_ALWAYS = {"Relu", "Sigmoid", "Softmax", "Abs", "Exp", "Softplus"}
_NONNEG_KEEPS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Concat",
                 "Identity", "Dropout", "LRN", "Flatten", "Reshape", "Transpose"}


def nonnegative(v, depth: int = 0) -> bool:
    """Is `v` >= 0 by construction (so zero padding cannot win a max)?"""
    node = v.producer()
    if node is None or depth > 50:
        return False
    if node.op_type in _NONNEG_ALWAYS:
        return True
    if node.op_type == "Clip" and len(node.inputs) > 1 and node.inputs[1] is not None \
            and node.inputs[1].const_value is not None:
        return float(node.inputs[1].const_value.numpy()) >= 0
    if node.op_type in _NONNEG_KEEPS:
        data = node.inputs if node.op_type == "Concat" else node.inputs[:1]
        return all(nonnegative(i, depth + 1) for i in data if i is not None)
    return False


def _geometry(ctx):
    kernel = list(ctx.attr("kernel_shape"))
    if len(kernel) != 2:
        raise Unsupported(f"{len(kernel)}-D pooling (the Keras exporter handles 2-D)")
    win = window(ctx, kernel)
    shape, out = ctx.shape(0), ctx.out_shape(0)
    if win.pads is None or shape is None or out is None or None in shape[2:] or None in out[2:]:
        raise Unsupported("pooling of an input whose size is not known")
    if any(d != 1 for d in win.dilations):
        raise Unsupported("dilated pooling")
    sizes = shape[2:]
    # the end pads valid pooling needs for ONNX's output size (ceil_mode adds a partial window)
    ends = [max(0, (o - 1) * s + k - n - b) for o, s, k, n, b in zip(out[2:], win.strides, kernel, sizes, win.pads[:2])]
    overhang = any(e > p for e, p in zip(ends, win.pads[2:]))
    pads = ((win.pads[0], ends[0]), (win.pads[1], ends[1]))
    same = list(win.pads[:2]) + ends == same_pads(sizes, kernel, win.strides, [1, 1]) and \
        all(-(-n // s) == o for n, s, o in zip(sizes, win.strides, out[2:]))
    return kernel, win.strides, pads, same, overhang


@converter("MaxPool")
def max_pool(ctx):
    if len(ctx.node.outputs) > 1 and (ctx.node.outputs[1].uses() or ctx.node.outputs[1].is_graph_output()):
        raise Unsupported("the Indices output of MaxPool")
    kernel, strides, pads, same, _ = _geometry(ctx)
    x = ctx.x(0, channels_last(4))
    args = dict(pool_size=tuple(kernel), strides=tuple(strides))
    if not any(sum(pads, ())):
        return ctx.layer(keras.layers.MaxPooling2D, x, padding="valid", **args)
    if same:
        return ctx.layer(keras.layers.MaxPooling2D, x, padding="same", **args)
    if nonnegative(ctx.node.inputs[0]):  # zeros never win a max over values >= 0
        x = ctx.layer(keras.layers.ZeroPadding2D, x, padding=pads, name_suffix="_pad")
        return ctx.layer(keras.layers.MaxPooling2D, x, padding="valid", **args)
    return ctx.layer(keras_layers.MaxPooling2DPadded, x, padding=pads, **args)


@converter("AveragePool")
def average_pool(ctx):
    kernel, strides, pads, same, overhang = _geometry(ctx)
    include_pad = ctx.attr("count_include_pad", 0)
    x = ctx.x(0, channels_last(4))
    args = dict(pool_size=tuple(kernel), strides=tuple(strides))
    if not any(sum(pads, ())):
        return ctx.layer(keras.layers.AveragePooling2D, x, padding="valid", **args)
    if include_pad:
        if overhang:
            raise Unsupported("ceil_mode with count_include_pad=1 (the partial window's divisor)")
        x = ctx.layer(keras.layers.ZeroPadding2D, x, padding=pads, name_suffix="_pad")
        return ctx.layer(keras.layers.AveragePooling2D, x, padding="valid", **args)
    if same:  # TF's 'same' average pooling counts only real elements, as ONNX does here
        return ctx.layer(keras.layers.AveragePooling2D, x, padding="same", **args)
    return ctx.layer(keras_layers.AveragePooling2DExcludePad, x, padding=pads, **args)


def _global(ctx, cls):
    if ctx.rank(0) != 4:
        raise Unsupported("global pooling of a non-4-D tensor")
    return ctx.layer(cls, ctx.x(0, channels_last(4)), keepdims=True)


@converter("GlobalAveragePool")
def global_average_pool(ctx):
    return _global(ctx, keras.layers.GlobalAveragePooling2D)


@converter("GlobalMaxPool")
def global_max_pool(ctx):
    return _global(ctx, keras.layers.GlobalMaxPooling2D)


@converter("ReduceMean")
def reduce_mean(ctx):
    """A spatial mean that keeps its dims (PyTorch's adaptive_avg_pool2d(1) exports this way) is a
    global average pool; other reductions are not converted."""
    axes = ctx.const(1) if ctx.has_input(1) else ctx.attr("axes")
    spatial = axes is not None and sorted(int(a) % 4 for a in list(axes)) == [2, 3]
    if ctx.rank(0) != 4 or not spatial or not ctx.attr("keepdims", 1):
        raise Unsupported("only a spatial mean keeping its dims (a global average pool) is converted")
    return _global(ctx, keras.layers.GlobalAveragePooling2D)
