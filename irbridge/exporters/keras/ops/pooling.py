"""Pooling of any rank -> MaxPooling1D/2D/3D, AveragePooling1D/2D/3D (+ ZeroPadding), global
pools, with ONNX's pads and ceil_mode exactly.

Where no standard layer is exact (pads that must never win a max over negative inputs, an
average whose divisor leaves out pads or a ceil_mode overhang, LpPool), the registered
`irbridge.keras_layers.PaddedPooling` does the pooling with keras.ops.
"""

from __future__ import annotations

import keras

from .... import keras_layers
from ....passes.assign_nhwc import channels_last
from ..._window import same_pads, window
from ..builder import Held
from ..registry import Unsupported, converter
from .conv import keras_layer, pairs, zero_pad

MAX = {1: "MaxPooling1D", 2: "MaxPooling2D", 3: "MaxPooling3D"}
AVERAGE = {1: "AveragePooling1D", 2: "AveragePooling2D", 3: "AveragePooling3D"}
GLOBAL_AVERAGE = {1: "GlobalAveragePooling1D", 2: "GlobalAveragePooling2D", 3: "GlobalAveragePooling3D"}
GLOBAL_MAX = {1: "GlobalMaxPooling1D", 2: "GlobalMaxPooling2D", 3: "GlobalMaxPooling3D"}

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


class Geometry:
    """A pooling window: kernel, strides, the explicit ONNX pads [b..., e...], the end pads
    ceil_mode adds (`extra`), and whether it is exactly Keras' padding='same'."""

    def __init__(self, ctx):
        kernel = list(ctx.attr("kernel_shape"))
        n = len(kernel)
        keras_layer(MAX, n)
        win = window(ctx, kernel)
        if win.pads is None:
            raise Unsupported("auto_pad SAME pooling of an input whose size is not known")
        if any(d != 1 for d in win.dilations):
            raise Unsupported("dilated pooling")
        self.n, self.kernel, self.strides, self.pads = n, kernel, list(win.strides), list(win.pads)
        shape, out = ctx.shape(0), ctx.out_shape(0)
        sizes = list(shape[2:]) if shape is not None else [None] * n
        outs = list(out[2:]) if out is not None else [None] * n
        ceil = bool(ctx.attr("ceil_mode", 0))
        self.extra, ends = [], []
        for i, (k, s, size, o) in enumerate(zip(kernel, self.strides, sizes, outs)):
            b, e = self.pads[i], self.pads[n + i]
            if size is not None and o is not None:
                end = max(0, (o - 1) * s + k - size - b)  # the end pad valid pooling needs for o outputs
            elif not ceil:
                end = e
            elif k >= s + e:  # pad s-1 more: the partial window, and never a window of pads only
                end = e + s - 1
            else:
                raise Unsupported("ceil_mode pooling of an input whose size is not known")
            ends.append(end)
            self.extra.append(max(0, end - e))
            self.pads[n + i] = min(e, end)  # explicit pads beyond the last window are never read
        self.same = None not in sizes and None not in outs and \
            self.pads[:n] + ends == same_pads(sizes, kernel, self.strides, [1] * n) and \
            all(-(-sz // s) == o for sz, s, o in zip(sizes, self.strides, outs))

    @property
    def padded(self) -> bool:
        return any(self.pads) or any(self.extra)

    def all_pads(self) -> list[int]:
        """Explicit pads with the ceil_mode overhang added to the ends."""
        return self.pads[:self.n] + [e + x for e, x in zip(self.pads[self.n:], self.extra)]

    def args(self) -> dict:
        return dict(pool_size=tuple(self.kernel), strides=tuple(self.strides))

    def custom(self, ctx, x, mode, **kw):
        pads = [[self.pads[i], self.pads[self.n + i]] for i in range(self.n)]
        return ctx.layer(keras_layers.PaddedPooling, x, padding=pads, extra=self.extra, mode=mode,
                         pool_size=list(self.kernel), strides=list(self.strides), **kw)


def free_same(ctx, table):
    """auto_pad SAME_UPPER over a size known only at run time -> Keras's padding='same' (TF's
    SAME: the extra pad at the end, a max never taken over pads, an average over real elements);
    None where that is not the same pooling."""
    kernel = list(ctx.attr("kernel_shape"))
    win = window(ctx, kernel)
    if win.pads is not None or not win.same_upper or any(d != 1 for d in win.dilations) or ctx.attr("ceil_mode", 0):
        return None
    return ctx.layer(keras_layer(table, len(kernel)), ctx.x(0, channels_last(len(kernel) + 2)), padding="same",
                     pool_size=tuple(kernel), strides=tuple(win.strides))


@converter("MaxPool")
def max_pool(ctx):
    if len(ctx.node.outputs) > 1 and (ctx.node.outputs[1].uses() or ctx.node.outputs[1].is_graph_output()):
        raise Unsupported("the Indices output of MaxPool")
    if (y := free_same(ctx, MAX)) is not None:
        return y
    g = Geometry(ctx)
    x = ctx.x(0, channels_last(g.n + 2))
    cls = keras_layer(MAX, g.n)
    if not g.padded:
        return ctx.layer(cls, x, padding="valid", **g.args())
    if g.same:
        return ctx.layer(cls, x, padding="same", **g.args())
    if nonnegative(ctx.node.inputs[0]):  # zeros never win a max over values >= 0
        return ctx.layer(cls, zero_pad(ctx, x, g.all_pads()), padding="valid", **g.args())
    if g.n == 2 and not any(g.extra):  # the 2-D layer of earlier exports
        return ctx.layer(keras_layers.MaxPooling2DPadded, x, padding=pairs(g.pads), **g.args())
    return g.custom(ctx, x, "max")


@converter("AveragePool")
def average_pool(ctx):
    include_pad = bool(ctx.attr("count_include_pad", 0))
    if not include_pad and (y := free_same(ctx, AVERAGE)) is not None:
        return y
    g = Geometry(ctx)
    x = ctx.x(0, channels_last(g.n + 2))
    cls = keras_layer(AVERAGE, g.n)
    if not g.padded:
        return ctx.layer(cls, x, padding="valid", **g.args())
    if include_pad and not any(g.extra):
        return ctx.layer(cls, zero_pad(ctx, x, g.pads), padding="valid", **g.args())
    if not include_pad and g.same:  # TF's 'same' average pooling counts only real elements, as ONNX does here
        return ctx.layer(cls, x, padding="same", **g.args())
    if g.n == 2 and not include_pad and not any(g.extra):  # the 2-D layer of earlier exports
        return ctx.layer(keras_layers.AveragePooling2DExcludePad, x, padding=pairs(g.pads), **g.args())
    return g.custom(ctx, x, "average", count_include_pad=include_pad)


@converter("LpPool")
def lp_pool(ctx):
    g = Geometry(ctx)
    x = ctx.x(0, channels_last(g.n + 2))
    return g.custom(ctx, x, "lp", p=int(ctx.attr("p", 2)))


def _global(ctx, table):
    rank = ctx.rank(0)
    if rank is None or rank - 2 not in table:
        raise Unsupported("global pooling of a tensor that is not 3-D, 4-D or 5-D")
    return ctx.layer(keras_layer(table, rank - 2), ctx.x(0, channels_last(rank)), keepdims=True)


@converter("GlobalAveragePool")
def global_average_pool(ctx):
    return _global(ctx, GLOBAL_AVERAGE)


@converter("GlobalMaxPool")
def global_max_pool(ctx):
    return _global(ctx, GLOBAL_MAX)


def spatial_mean_pool(ctx):
    """A spatial mean that keeps its dims (PyTorch's adaptive_avg_pool2d(1) exports this way) as a
    global average pool, over the data as it is held (channels-last or channels-first); None for
    any other mean (the ReduceMean converter in math.py, its one registration, then reduces)."""
    axes = ctx.const(1) if ctx.has_input(1) else ctx.attr("axes")
    spatial = axes is not None and sorted(int(a) % 4 for a in list(axes)) == [2, 3]
    if ctx.rank(0) != 4 or not spatial or not ctx.attr("keepdims", 1):
        return None
    perm = ctx.perm_in(0)
    fmt = "channels_first" if tuple(perm) == (0, 1, 2, 3) else "channels_last"
    perm = perm if fmt == "channels_first" else channels_last(4)
    layer = ctx.layer(keras.layers.GlobalAveragePooling2D, ctx.x(0, perm), keepdims=True, data_format=fmt)
    return Held(layer, perm)
