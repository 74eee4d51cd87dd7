"""Normalizations -> BatchNormalization, LayerNormalization, RMSNormalization, LRN; the
decomposed LayerNorm and RMS norm patterns of older exports are recognised as those layers."""

from __future__ import annotations

import keras
import numpy as np

from .... import keras_layers
from ....passes.assign_nhwc import channels_last
from ..builder import Held, fuser
from ..registry import Unsupported, converter
from .tensor import held_perm, ident, op, with_sizes


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


def normalize(ctx, x_index, first_axis, epsilon, scale, bias, rms=False):
    """LayerNormalization (or RMSNormalization) of input `x_index` over axes first_axis.. with
    the given constant scale/bias (None: absent), in the layout the input is held."""
    shape, rank = ctx.shape(x_index), ctx.rank(x_index)
    if shape is None:
        raise Unsupported("a normalization of a tensor of unknown rank")
    axes = list(range(first_axis % rank, rank))
    norm_shape = tuple(shape[a] for a in axes)
    if None in norm_shape:
        raise Unsupported("a normalization over axes whose sizes are known only at run time")
    name = ctx.node.inputs[x_index].name
    perm = ctx.b.env[name][1] if name in ctx.b.env else ident(rank)
    if perm[0] != 0:
        perm = ident(rank)
    held = sorted(perm.index(a) for a in axes)
    order = np.argsort([perm.index(a) for a in axes])  # logical param axes in held order

    def param(p):
        full = np.broadcast_to(np.asarray(p), norm_shape)
        return np.ascontiguousarray(full.transpose(order))

    axis = held if len(held) > 1 else held[0]
    x = with_sizes(ctx, ctx.x(x_index, perm), {perm.index(a): shape[a] for a in axes})  # MobileViT's unfolded patches
    if rms:
        if bias is not None:
            raise Unsupported("an RMS norm with a bias")
        sc = np.ones(norm_shape, np.float32) if scale is None else scale
        y = ctx.layer(keras.layers.RMSNormalization, x, weights=[param(sc)],
                      axis=axis, epsilon=float(epsilon))
        return Held(y, perm)
    weights, kwargs = [], {}
    if scale is not None:
        weights.append(param(scale))
    else:
        kwargs["scale"] = False
    if bias is not None:
        weights.append(param(bias))
    else:
        kwargs["center"] = False
    y = ctx.layer(keras.layers.LayerNormalization, x, weights=weights or None,
                  axis=axis, epsilon=float(epsilon), **kwargs)
    return Held(y, perm)


def _stats_used(ctx) -> bool:
    return any(o.uses() or o.is_graph_output() for o in ctx.node.outputs[1:] if o is not None and o.name)


@converter("LayerNormalization", since=17)
def layer_norm(ctx):
    """A LayerNormalization layer with the constant scale/bias as its weights; with run-time
    scale/bias, or its Mean/InvStdDev outputs read, the same arithmetic in keras.ops."""
    scale, bias = ctx.const(1), ctx.const(2)
    attrs = {"axis": ctx.attr("axis", -1), "epsilon": ctx.attr("epsilon", 1e-5)}
    if scale is not None and (bias is not None or not ctx.has_input(2)) and not _stats_used(ctx):
        try:
            return normalize(ctx, 0, attrs["axis"], attrs["epsilon"], scale, bias)
        except Unsupported:
            pass
    return op(ctx, "layer_norm", {**attrs, "outputs": len(ctx.node.outputs)}, inputs=[0, 1, 2])


@converter("RMSNormalization", since=23)
def rms_norm(ctx):
    """RMSNormalization layer with a constant scale; a run-time scale in keras.ops."""
    scale = ctx.const(1)
    axis, eps = ctx.attr("axis", -1), ctx.attr("epsilon", 1e-5)
    if scale is not None:
        try:
            return normalize(ctx, 0, axis, eps, scale, None, rms=True)
        except Unsupported:
            pass
    return op(ctx, "rms_norm", {"axis": axis, "epsilon": eps}, inputs=[0, 1])


# --- decomposed patterns -----------------------------------------------------------------------------
def _only_reader(v, op_types):
    uses = list(v.uses())
    if len(uses) != 1 or v.is_graph_output():
        return None
    n = uses[0][0]
    return n if n.op_type in op_types and not n.domain else None


def _other(n, v):
    """The operand of binary `n` that is not `v`, and its constant value (or None)."""
    o = n.inputs[1] if n.inputs[0] is v else n.inputs[0]
    return o, (None if o.const_value is None or o.is_graph_input() else o.const_value.numpy())


def _axes(n):
    if len(n.inputs) > 1 and n.inputs[1] is not None and n.inputs[1].const_value is not None:
        axes = n.inputs[1].const_value.numpy().reshape(-1).tolist()
    else:
        axes = n.attributes.get_ints("axes", None)
    rank = len(n.inputs[0].shape) if n.inputs[0].shape is not None else None
    if axes is None or rank is None or not n.attributes.get_int("keepdims", 1):
        return None
    axes = sorted(int(a) % rank for a in axes)
    return axes[0] if axes == list(range(axes[0], rank)) else None


def _square(v):
    """The reader of `v` computing v*v or v**2."""
    for n, _ in v.uses():
        if n.op_type == "Pow" and n.inputs[0] is v and n.inputs[1].const_value is not None and \
                float(n.inputs[1].const_value.numpy().reshape(-1)[0]) == 2.0:
            return n
        if n.op_type == "Mul" and n.inputs[0] is v and n.inputs[1] is v:
            return n
    return None


def _tail(b, v, chain):
    """Mean-square `v` -> + eps -> sqrt -> (Div | Reciprocal, Mul): (eps, normalized value)."""
    add = _only_reader(v, ("Add",))
    if add is None:
        return None
    _, eps = _other(add, v)
    sqrt = _only_reader(add.outputs[0], ("Sqrt",))
    if eps is None or eps.size != 1 or sqrt is None:
        return None
    chain += [add, sqrt]
    s = sqrt.outputs[0]
    div = _only_reader(s, ("Div", "Reciprocal"))
    if div is None:
        return None
    chain.append(div)
    if div.op_type == "Div":
        return (float(eps.reshape(-1)[0]), div) if div.inputs[1] is s else None
    mul = _only_reader(div.outputs[0], ("Mul",))
    if mul is None:
        return None
    chain.append(mul)
    return float(eps.reshape(-1)[0]), mul


def _affine(v, chain, width):
    """Mul by a constant scale and Add of a constant bias that may follow: (scale, bias, end)."""
    scale = bias = None
    end = v
    for op_type in ("Mul", "Add"):
        n = _only_reader(end, (op_type,))
        if n is None:
            continue
        _, c = _other(n, end)
        if c is None or c.shape[-1:] != (width,) or np.prod(c.shape) != width:
            continue
        if op_type == "Mul":
            scale = c.reshape(-1)
        else:
            bias = c.reshape(-1)
        chain.append(n)
        end = n.outputs[0]
    return scale, bias


@fuser
def find_norms(b, graph) -> None:
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div(/Mul/Add) -> LayerNormalization and
    Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul(/Mul) -> RMSNormalization, when only the last node's
    value leaves the pattern."""
    for mean in list(graph):
        if mean.op_type != "ReduceMean" or mean.domain or mean in b.dropped:
            continue
        x = mean.inputs[0]
        first = _axes(mean)
        if first is None or x.shape is None or len(x.shape) != 1 + first or not isinstance(x.shape[-1], int):
            continue
        width = x.shape[-1]
        sub = _only_reader(mean.outputs[0], ("Sub",))
        if sub is not None and sub.inputs[0] is x and sub.inputs[1] is mean.outputs[0]:  # LayerNorm
            d = sub.outputs[0]
            sq = _square(d)
            if sq is None:
                continue
            mean2 = _only_reader(sq.outputs[0], ("ReduceMean",))
            if mean2 is None or _axes(mean2) != first or len(list(d.uses())) != 2:
                continue
            chain = [mean, sub, sq, mean2]
            tail = _tail(b, mean2.outputs[0], chain)
            if tail is None or tail[1].op_type != "Div" or tail[1].inputs[0] is not d:
                continue
            rms = False
        elif mean.inputs[0].producer() is not None and mean.inputs[0].producer().op_type in ("Pow", "Mul"):
            sq = mean.inputs[0].producer()
            x = sq.inputs[0]
            if _square(x) is not sq or len(list(sq.outputs[0].uses())) != 1:
                continue
            chain = [sq, mean]
            tail = _tail(b, mean.outputs[0], chain)
            if tail is None or tail[1].op_type != "Mul" or x not in tail[1].inputs:
                continue
            rms = True
        else:
            continue
        eps, last = tail
        scale, bias = _affine(last.outputs[0], chain, width)
        end = chain[-1]
        b.dropped.update(chain[:-1])

        def convert(ctx, x=x, first=first, eps=eps, scale=scale, bias=bias, rms=rms):
            return _fused(ctx, x, first, eps, scale, bias, rms)

        b.fusions[end] = convert


def _fused(ctx, x, first, eps, scale, bias, rms):
    """Run `normalize` on value `x` (not necessarily an input of the pattern's last node)."""

    class _View:  # the last node's context, reading `x` as its input 0
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, k):
            return getattr(self._inner, k)

        def shape(self, i):
            return tuple(d if isinstance(d, int) else None for d in x.shape)

        def rank(self, i):
            return len(x.shape)

        def x(self, i, perm=None, order_only=False):
            return self._inner.b.tensor(x, tuple(perm), order_only)

        @property
        def node(self):
            return _Node(self._inner.node)

    class _Node:
        def __init__(self, n):
            self._n = n
            self.inputs = [x]
            self.outputs = n.outputs

        def __getattr__(self, k):
            return getattr(self._n, k)

    return normalize(_View(ctx), 0, first, eps, scale, bias, rms=rms)


# --- Lp and mean-variance normalization (keras.ops, no layer computes them) ----------------------------
@converter("LpNormalization")
def lp_norm(ctx):
    p = int(ctx.attr("p", 2))
    if p not in (1, 2):
        raise Unsupported(f"LpNormalization with p={p} (ONNX defines p=1 and p=2)")
    perm = held_perm(ctx)
    return Held(ctx.tensor_op("lp_norm", {"axis": ctx.axis(ctx.attr("axis", -1), perm), "p": p}, perm=perm), perm)


@converter("MeanVarianceNormalization", since=9)
def mean_variance_norm(ctx):
    perm = held_perm(ctx)
    axes = [ctx.axis(a, perm) for a in ctx.attr("axes", [0, 2, 3])]
    return Held(ctx.tensor_op("mvn", {"axes": axes}, perm=perm), perm)


from . import group_norm  # noqa: E402, F401, I001  (GroupNormalization and InstanceNormalization register there)
