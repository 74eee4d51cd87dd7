"""Dense, BatchNormalization, LRN, activations, merges, shape ops -> Keras layers."""

from __future__ import annotations

import keras
import numpy as np

from .... import keras_layers
from ....passes.assign_nhwc import channels_last, physical_perm
from ..builder import keeps_batch
from ..registry import Unsupported, converter


def _identity(ctx, i=0):
    return tuple(range(ctx.rank(i)))


# --- fully connected ---------------------------------------------------------------------------
@converter("Gemm")
def gemm(ctx):
    w, c = ctx.const(1), ctx.const(2)
    if ctx.attr("transA", 0) or ctx.attr("alpha", 1.0) != 1.0 or w is None or w.ndim != 2:
        raise Unsupported("Gemm other than x @ W + b with constant W")
    kernel = w.T if ctx.attr("transB", 0) else w
    if ctx.has_input(2) and (c is None or ctx.attr("beta", 1.0) != 1.0 or c.size != kernel.shape[1]):
        raise Unsupported("a Gemm bias that is not a constant vector")
    return _dense(ctx, kernel, None if c is None else c.reshape(-1))


@converter("MatMul")
def matmul(ctx):
    w = ctx.const(1)
    if ctx.node in ctx.b.dense_nd:
        return _dense_last_axis(ctx, w, *ctx.b.dense_nd[ctx.node])
    if w is None or w.ndim != 2:
        raise Unsupported("MatMul by a non-constant or non-2-D matrix")
    bias, add = None, ctx.follower(("Add",))
    if add is not None:  # MatMul + Add(b) is one Dense layer, as a Keras user writes it
        other = add.inputs[1] if add.inputs[0] is ctx.node.outputs[0] else add.inputs[0]
        b = None if other.const_value is None or other.is_graph_input() else other.const_value.numpy()
        if b is not None and b.size == w.shape[1] and b.shape[-1] == w.shape[1]:
            bias = b.reshape(-1)
            ctx.absorb(add)
    return _dense(ctx, w, bias, after=add if bias is not None else None)


def _dense_last_axis(ctx, w, x, reshape):
    """Dense over the last axis of `x` (N-D, any free dims) doing Reshape-MatMul-Reshape, with a
    following bias Add and Relu fused; the result stands for the last of them."""
    ident = tuple(range(len(x.shape)))
    out = reshape.outputs[0]
    if (physical_perm(x) or ident) != ident or (physical_perm(out) or ident) != ident:
        raise Unsupported("a Dense over the last axis of a tensor held in another layout")
    ends, bias = [out], None
    add = ctx.follower(("Add",), out)
    if add is not None:
        other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
        b = None if other.const_value is None or other.is_graph_input() else other.const_value.numpy()
        if b is not None and b.size == w.shape[1] and b.shape[-1] == w.shape[1]:
            bias = b.reshape(-1)
            ctx.b.absorbed[add] = add.outputs[0]
            ends.append(add.outputs[0])
    relu = ctx.follower(("Relu",), ends[-1])
    if relu is not None:
        ctx.b.absorbed[relu] = relu.outputs[0]
        ends.append(relu.outputs[0])
    t = ctx.layer(keras.layers.Dense, ctx.b.tensor(x, ident), weights=[w] + ([bias] if bias is not None else []),
                  units=w.shape[1], use_bias=bias is not None, activation="relu" if relu is not None else None)
    for v in ends:
        ctx.b.env[v.name] = (t, ident)
    return t


def _dense(ctx, kernel, bias, after=None):
    """Dense(kernel [in, out], bias), with a following Relu fused as activation='relu'."""
    activation = ctx.fused_activation(after.outputs[0] if after is not None else None)
    weights = [kernel] + ([bias] if bias is not None else [])
    return ctx.layer(keras.layers.Dense, ctx.x(0, _identity(ctx)), weights=weights,
                     units=kernel.shape[1], use_bias=bias is not None, activation=activation)


# --- normalization -------------------------------------------------------------------------------
@converter("BatchNormalization")
def batch_norm(ctx):
    params = [ctx.const(i) for i in range(1, 5)]
    if any(p is None for p in params) or ctx.attr("training_mode", 0):
        raise Unsupported("BatchNormalization with run-time statistics or in training mode")
    perm = ctx.perm_out(0)
    return ctx.layer(keras.layers.BatchNormalization, ctx.x(0, perm), weights=params,
                     axis=ctx.axis(1, perm), epsilon=ctx.attr("epsilon", 1e-5),
                     momentum=ctx.attr("momentum", 0.9))


@converter("LRN")
def lrn(ctx):
    if ctx.rank(0) != 4:
        raise Unsupported("LRN on a non-4-D tensor")
    return ctx.layer(keras_layers.LRN, ctx.x(0, channels_last(4)), size=ctx.attr("size"),
                     alpha=ctx.attr("alpha", 1e-4), beta=ctx.attr("beta", 0.75), bias=ctx.attr("bias", 1.0))


# --- activations ---------------------------------------------------------------------------------
def _activation(op_type, make):
    def convert(ctx):
        cls, kwargs = make(ctx)
        return ctx.layer(cls, ctx.x(0), **kwargs)

    converter(op_type)(convert)


_activation("Relu", lambda ctx: (keras.layers.ReLU, {}))
_activation("LeakyRelu", lambda ctx: (keras.layers.LeakyReLU, {"negative_slope": ctx.attr("alpha", 0.01)}))
_activation("Elu", lambda ctx: (keras.layers.ELU, {"alpha": ctx.attr("alpha", 1.0)}))
for _op, _name in {"Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Softsign": "softsign",
                   "Mish": "mish", "HardSwish": "hard_swish"}.items():
    _activation(_op, lambda ctx, n=_name: (keras.layers.Activation, {"activation": n}))


@converter("Gelu", since=20)
def gelu(ctx):
    if ctx.attr("approximate", "none") != "none":
        raise Unsupported("the tanh approximation of Gelu (Keras' 'gelu' activation is exact)")
    return ctx.layer(keras.layers.Activation, ctx.x(0), activation="gelu")


@converter("Selu")
def selu(ctx):
    if abs(ctx.attr("alpha", 1.6732632) - 1.6732632) > 1e-6 or abs(ctx.attr("gamma", 1.050701) - 1.050701) > 1e-6:
        raise Unsupported("Selu with alpha/gamma other than the standard constants")
    return ctx.layer(keras.layers.Activation, ctx.x(0), activation="selu")


@converter("Clip")
def clip(ctx):
    lo = ctx.const(1) if ctx.has_input(1) else None
    hi = ctx.const(2) if ctx.has_input(2) else None
    if (ctx.has_input(1) and lo is None) or (ctx.has_input(2) and hi is None):
        raise Unsupported("Clip bounds computed at run time")
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if lo == 0.0:
        return ctx.layer(keras.layers.ReLU, ctx.x(0), max_value=hi)
    y = ctx.x(0)
    if lo is not None:
        y = ctx.layer(keras_layers.ConstantOp, y, weights=[np.array(lo)], op="maximum", name_suffix="_min")
    if hi is not None:
        y = ctx.layer(keras_layers.ConstantOp, y, weights=[np.array(hi)], op="minimum", name_suffix="_max")
    return y


@converter("PRelu")
def prelu(ctx):
    slope = ctx.const(1)
    perm, rank = ctx.perm_out(0), ctx.rank(0)
    if slope is None or rank is None or rank < 2:
        raise Unsupported("PRelu with a run-time slope")
    full = slope.reshape((1,) * (rank - slope.ndim) + slope.shape).transpose(perm)[0]
    shared = [i + 1 for i, d in enumerate(full.shape) if d == 1]
    alpha = np.broadcast_to(full, full.shape)
    return ctx.layer(keras.layers.PReLU, ctx.x(0, perm), weights=[alpha], shared_axes=shared or None)


@converter("Softmax", since=13)
def softmax(ctx):
    perm = ctx.perm_out(0)
    return ctx.layer(keras.layers.Softmax, ctx.x(0, perm), axis=ctx.axis(ctx.attr("axis", -1), perm))


# --- elementwise and merges ----------------------------------------------------------------------
_MERGE = {"Add": (keras.layers.Add, "add"), "Sum": (keras.layers.Add, "add"),
          "Sub": (keras.layers.Subtract, "subtract"), "Mul": (keras.layers.Multiply, "multiply"),
          "Max": (keras.layers.Maximum, "maximum"), "Min": (keras.layers.Minimum, "minimum"),
          "Div": (None, "divide"), "Pow": (None, "power")}


def _merge(op_type):
    cls, op = _MERGE[op_type]

    def convert(ctx):
        perm = ctx.perm_out(0)
        n = len(ctx.node.inputs)
        consts = [ctx.const(i) for i in range(n)]
        if n == 1:
            return ctx.x(0, perm)
        if n == 2 and (consts[0] is None) != (consts[1] is None):
            k = 0 if consts[0] is not None else 1
            c = consts[k]
            rank = len(perm)
            c = c.reshape((1,) * (rank - c.ndim) + c.shape).transpose(perm)
            return ctx.layer(keras_layers.ConstantOp, ctx.x(1 - k, perm), weights=[c], op=op,
                             shape=list(c.shape), reverse=k == 0)
        if any(c is not None for c in consts) or cls is None:
            raise Unsupported(f"{op_type} of these operands")
        if len({ctx.rank(i) for i in range(n)}) != 1:
            raise Unsupported(f"{op_type} of tensors of different ranks")
        return ctx.layer(cls, *[ctx.x(i, perm) for i in range(n)])

    converter(op_type)(convert)


for _op in _MERGE:
    _merge(_op)


@converter("Concat")
def concat(ctx):
    perm = ctx.perm_out(0)
    xs = [ctx.x(i, perm) for i in range(len(ctx.node.inputs))]
    if len(xs) == 1:
        return xs[0]
    return ctx.layer(keras.layers.Concatenate, *xs, axis=ctx.axis(ctx.attr("axis"), perm))


# --- shape and data movement ---------------------------------------------------------------------
@converter("Identity")
def identity(ctx):
    return ctx.x(0)


@converter("Dropout")
def dropout(ctx):
    if ctx.has_input(2) or (len(ctx.node.outputs) > 1 and (ctx.node.outputs[1].uses() or ctx.node.outputs[1].is_graph_output())):
        raise Unsupported("Dropout's training mode or mask output (export is for inference)")
    ratio = ctx.const(1) if ctx.has_input(1) else None
    return ctx.layer(keras.layers.Dropout, ctx.x(0), rate=float(ratio) if ratio is not None else 0.5)


@converter("Flatten")
def flatten(ctx):
    if ctx.attr("axis", 1) != 1:
        raise Unsupported("Flatten with axis != 1")
    if ctx.rank(0) == 2:
        return ctx.x(0, (0, 1))
    return ctx.layer(keras.layers.Flatten, ctx.x(0, _identity(ctx), order_only=True))


@converter("Reshape", since=5)
def reshape(ctx):
    src, out = ctx.shape(0), ctx.out_shape(0)
    if src is None or out is None or not keeps_batch(ctx.node):
        raise Unsupported("a Reshape that changes the batch size (or whose batch is not known to stay)")
    if None in out[1:]:
        raise Unsupported(f"a Reshape to {list(ctx.node.outputs[0].shape)}: sizes beyond the batch known only "
                          "at run time (a free dim other than the batch)")
    return ctx.layer(keras.layers.Reshape, ctx.x(0, _identity(ctx), order_only=True),
                     target_shape=tuple(out[1:]))


@converter("Transpose")
def transpose(ctx):
    """Free where assign-nhwc made it a change of view: the output held in Q is the input held
    in [perm[i] for i in Q], which is the input's own layout then."""
    perm = ctx.attr("perm") or list(reversed(range(ctx.rank(0))))
    return ctx.x(0, tuple(perm[i] for i in ctx.perm_out(0)))


@converter("Pad", since=18)
def pad(ctx):
    pads, value = ctx.const(1), ctx.const(2) if ctx.has_input(2) else None
    mode = ctx.attr("mode", "constant")
    if pads is None or mode != "constant" or (value is not None and float(value) != 0) \
            or ctx.has_input(3) or ctx.rank(0) != 4 or any(pads[[0, 1, 4, 5]]):
        raise Unsupported("Pad other than zero padding of the spatial dims of a 4-D tensor")
    return ctx.layer(keras.layers.ZeroPadding2D, ctx.x(0, channels_last(4)),
                     padding=((int(pads[2]), int(pads[6])), (int(pads[3]), int(pads[7]))))
