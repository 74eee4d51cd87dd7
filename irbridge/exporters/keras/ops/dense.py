"""Gemm and MatMul -> Dense (any rank, bias Add and Relu fused); MatMul of two activations and
Einsum -> keras.ops.matmul / einsum in a TensorOp, reading each operand in the layout it is held
(attention's head transposes cost no Permute)."""

from __future__ import annotations

import keras

from ....passes.assign_nhwc import physical_perm
from ..builder import Held
from ..registry import Unsupported, converter
from .tensor import ident, op

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


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
    if ctx.const(0) is None and w is not None and w.ndim == 2 and (ctx.rank(0) or 0) >= 1:
        bias, add = None, ctx.follower(("Add",))
        if add is not None:  # MatMul + Add(b) is one Dense layer, as a Keras user writes it
            other = add.inputs[1] if add.inputs[0] is ctx.node.outputs[0] else add.inputs[0]
            b = None if other.const_value is None or other.is_graph_input() else other.const_value.numpy()
            if b is not None and b.size == w.shape[1] and b.shape[-1] == w.shape[1] and \
                    add.outputs[0].shape is not None and len(add.outputs[0].shape) == ctx.rank(0):
                bias = b.reshape(-1)
                ctx.absorb(add)
        if ctx.rank(0) == 1:
            raise Unsupported("a vector times a matrix (no batch axis)")
        return _dense(ctx, w, bias, after=add if bias is not None else None)
    return _matmul(ctx)


def _matmul(ctx):
    """Two activations (or a constant batch of matrices): ops.matmul, or one einsum over the held
    layouts when an operand was transposed as a view."""
    ra, rb = ctx.rank(0), ctx.rank(1)
    held = [ctx.b.env[v.name][1] if v.name in ctx.b.env else None for v in ctx.node.inputs]
    t = ctx.follower(("Transpose",))
    if ra is None or rb is None or ra != rb or ra < 3 or any(h is None for h in held) or \
            (all(h == ident(ra) for h in held) and t is None) or any(ctx.const(i) is not None for i in (0, 1)):
        return op(ctx, "matmul")
    sa, sb = ctx.shape(0), ctx.shape(1)
    if any(x != y and 1 in (x, y) for x, y in zip(sa[:-2], sb[:-2])):
        return op(ctx, "matmul")  # broadcasting batch dims: not in an einsum
    batch = _LETTERS[:ra - 2]
    i, k, j = _LETTERS[ra - 2:ra + 1]
    a_sub, b_sub, o_sub = batch + i + k, batch + k + j, batch + i + j
    out_perm = ident(ra)
    if t is not None and (t.attributes.get_ints("perm", None) or [1])[0] == 0:
        out_perm = tuple(t.attributes.get_ints("perm"))  # emit in the order the Transpose reads
    eq = "".join(a_sub[p] for p in held[0]) + "," + "".join(b_sub[p] for p in held[1]) + "->" + \
        "".join(o_sub[p] for p in out_perm)
    from .... import provenance
    from ....keras_tensor_layers import TensorOp

    layer = TensorOp(op="einsum", attrs={"equation": eq}, slots=["x", "x"], name=ctx.b.fresh(
        provenance.source_of(ctx.node)), trainable=ctx.b.trainable)
    y = layer([ctx.b.env[ctx.node.inputs[0].name][0], ctx.b.env[ctx.node.inputs[1].name][0]])
    return Held(y, out_perm)


@converter("Einsum", since=12)
def einsum(ctx):
    return op(ctx, "einsum", {"equation": ctx.attr("equation").replace(" ", "")})


def _dense_last_axis(ctx, w, x, reshape):
    """Dense over the last axis of `x` (N-D, any free dims) doing Reshape-MatMul-Reshape, with a
    following bias Add and Relu fused; the result stands for the last of them."""
    ident_x = tuple(range(len(x.shape)))
    out = reshape.outputs[0]
    if (physical_perm(x) or ident_x) != ident_x or (physical_perm(out) or ident_x) != ident_x:
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
    t = ctx.layer(keras.layers.Dense, ctx.b.tensor(x, ident_x), weights=[w] + ([bias] if bias is not None else []),
                  units=w.shape[1], use_bias=bias is not None, activation="relu" if relu is not None else None)
    for v in ends:
        ctx.b.env[v.name] = (t, ident_x)
    return t


def _dense(ctx, kernel, bias, after=None):
    """Dense(kernel [in, out], bias) over the last axis, with a following Relu fused."""
    activation = ctx.fused_activation(after.outputs[0] if after is not None else None)
    weights = [kernel] + ([bias] if bias is not None else [])
    rank = ctx.rank(0)
    x = ctx.x(0, ident(rank))
    if x.shape[-1] is None:  # a live Reshape's result: Dense needs its width to build
        from .... import provenance
        from ....keras_tensor_layers import TensorOp

        known = [None] * (len(x.shape) - 1) + [int(kernel.shape[0])]
        x = TensorOp(op="identity", known=known, trainable=ctx.b.trainable,
                     name=ctx.b.fresh(provenance.source_of(ctx.node) + "_width"))(x)
    y = ctx.layer(keras.layers.Dense, x, weights=weights,
                  units=kernel.shape[1], use_bias=bias is not None, activation=activation)
    return Held(y, ident(rank))
