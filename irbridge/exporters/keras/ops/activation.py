"""Activations -> Keras activation layers; decomposed activations (x*0.5*(1+erf(x/sqrt2)),
GPT-2's tanh GELU, x*sigmoid(x), hard swish...) recognised as the one layer they compute."""

from __future__ import annotations

import math

import keras
import numpy as np

from .... import keras_layers
from ....keras_tensor_layers import GELU
from ..builder import Held, fuser
from ..registry import Unsupported, converter
from .tensor import held_perm, op


def _activation(op_type, make, since=1):
    def convert(ctx):
        cls, kwargs = make(ctx)
        return ctx.layer(cls, ctx.x(0), **kwargs)

    converter(op_type, since=since)(convert)


_activation("Relu", lambda ctx: (keras.layers.ReLU, {}))
_activation("LeakyRelu", lambda ctx: (keras.layers.LeakyReLU, {"negative_slope": ctx.attr("alpha", 0.01)}))
_activation("Elu", lambda ctx: (keras.layers.ELU, {"alpha": ctx.attr("alpha", 1.0)}))
for _op, _name in {"Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Softsign": "softsign",
                   "Mish": "mish", "HardSwish": "hard_swish"}.items():
    _activation(_op, lambda ctx, n=_name: (keras.layers.Activation, {"activation": n}))


@converter("Gelu", since=20)
def gelu(ctx):
    """Exact GELU is Activation('gelu'); the tanh approximation is irbridge's GELU layer."""
    if ctx.attr("approximate", "none") == "tanh":
        return ctx.layer(GELU, ctx.x(0), approximate=True)
    return ctx.layer(keras.layers.Activation, ctx.x(0), activation="gelu")


@converter("HardSigmoid", since=6)
def hard_sigmoid(ctx):
    alpha, beta = ctx.attr("alpha", 0.2), ctx.attr("beta", 0.5)
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return ctx.layer(keras.layers.Activation, ctx.x(0), activation="hard_sigmoid")
    return Held(ctx.tensor_op("hard_sigmoid", {"alpha": alpha, "beta": beta}, perm=ctx.perm_out(0)),
                ctx.perm_out(0))


def _elementwise_op(op_type, name, since, **defaults):
    """An activation no Keras layer computes, as a TensorOp in the layout of its input."""
    def convert(ctx):
        perm = held_perm(ctx)
        attrs = {k: ctx.attr(k, v) for k, v in defaults.items()}
        return Held(ctx.tensor_op(name, attrs, perm=perm), perm)

    converter(op_type, since=since)(convert)


_elementwise_op("ThresholdedRelu", "thresholded_relu", 10, alpha=1.0)
_elementwise_op("Shrink", "shrink", 9, bias=0.0, lambd=0.5)
_elementwise_op("Celu", "celu", 12, alpha=1.0)
_elementwise_op("Swish", "swish", 24, alpha=1.0)


@converter("Selu")
def selu(ctx):
    if abs(ctx.attr("alpha", 1.6732632) - 1.6732632) > 1e-6 or abs(ctx.attr("gamma", 1.050701) - 1.050701) > 1e-6:
        raise Unsupported("Selu with alpha/gamma other than the standard constants")
    return ctx.layer(keras.layers.Activation, ctx.x(0), activation="selu")


@converter("Clip")
def clip(ctx):
    lo = ctx.const(1) if ctx.has_input(1) else None
    hi = ctx.const(2) if ctx.has_input(2) else None
    if (ctx.has_input(1) and lo is None) or (ctx.has_input(2) and hi is None) or \
            not (ctx.dtype_name(ctx.node.inputs[0]) or "float").startswith(("float", "bfloat")):
        return op(ctx, "clip")
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


@converter("LogSoftmax", since=13)
def log_softmax(ctx):
    return op(ctx, "log_softmax", {"axis": ctx.attr("axis", -1)})


# --- decomposed activations ------------------------------------------------------------------------
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sigmoid", "Sqrt", "Relu", "Clip",
                "Max", "Min", "HardSigmoid", "Neg", "Exp", "Log", "Softplus", "Reciprocal"}
_NONLINEAR = {"Erf", "Tanh", "Sigmoid", "Relu", "Clip", "Max", "Min", "HardSigmoid", "Exp", "Softplus"}


def _erf(x):
    return np.vectorize(math.erf)(x)


def _relu6(x):
    return np.clip(x, 0, 6)


# activation -> (the ops its decomposition needs one of, the function, the Keras layer)
_KNOWN = {
    "gelu": ({"Erf"}, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), (keras.layers.Activation, {"activation": "gelu"})),
    "gelu_tanh": ({"Tanh"}, lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
                  (GELU, {"approximate": True})),
    "silu": ({"Sigmoid"}, lambda x: x / (1 + np.exp(-x)), (keras.layers.Activation, {"activation": "silu"})),
    "hard_swish": ({"Clip", "Relu", "Max", "Min", "HardSigmoid"}, lambda x: x * _relu6(x + 3) / 6,
                   (keras.layers.Activation, {"activation": "hard_swish"})),
    "hard_sigmoid": ({"Clip", "Relu", "Max", "Min", "HardSigmoid"}, lambda x: _relu6(x + 3) / 6,
                     (keras.layers.Activation, {"activation": "hard_sigmoid"})),
    "mish": ({"Tanh"}, lambda x: x * np.tanh(np.log1p(np.exp(x))), (keras.layers.Activation, {"activation": "mish"})),
}


def _scalar(v):
    if v is None or v.const_value is None or v.is_graph_input():
        return None
    c = v.const_value.numpy()
    return np.float64(c.reshape(-1)[0]) if c.size == 1 else None


def _eval(n, a):
    """ONNX op `n` on float64 numpy operands `a` (scalars for constants)."""
    t = n.op_type
    f = {"Add": lambda: a[0] + a[1], "Sub": lambda: a[0] - a[1], "Mul": lambda: a[0] * a[1],
         "Div": lambda: a[0] / a[1], "Pow": lambda: np.power(a[0], a[1]), "Erf": lambda: _erf(a[0]),
         "Tanh": lambda: np.tanh(a[0]), "Sigmoid": lambda: 1 / (1 + np.exp(-a[0])), "Sqrt": lambda: np.sqrt(a[0]),
         "Relu": lambda: np.maximum(a[0], 0), "Max": lambda: np.maximum.reduce(a), "Min": lambda: np.minimum.reduce(a),
         "Clip": lambda: np.clip(a[0], a[1] if len(a) > 1 and a[1] is not None else -np.inf,
                                 a[2] if len(a) > 2 and a[2] is not None else np.inf),
         "HardSigmoid": lambda: np.clip(n.attributes.get_float("alpha", 0.2) * a[0] + n.attributes.get_float("beta", 0.5), 0, 1),
         "Neg": lambda: -a[0], "Exp": lambda: np.exp(a[0]), "Log": lambda: np.log(a[0]),
         "Softplus": lambda: np.log1p(np.exp(a[0])), "Reciprocal": lambda: 1 / a[0]}[t]
    return f()


def _region(x, taken):
    """The elementwise nodes computed from `x` and scalar constants alone, in graph order."""
    avail, region = {x}, []
    grew = True
    while grew and len(region) < 16:
        grew = False
        for v in list(avail):
            for n, _ in v.uses():
                if n in region or n in taken or n.op_type not in _ELEMENTWISE or n.domain:
                    continue
                if all(i is None or i in avail or _scalar(i) is not None for i in n.inputs):
                    region.append(n)
                    avail.update(n.outputs)
                    grew = True
    return region


@fuser
def find_activations(b, graph) -> None:
    """Regions of elementwise ops with one input and one output that compute a known activation
    (checked numerically on a probe) become that activation's Keras layer."""
    taken = set(b.dropped) | set(b.fusions)
    order = {n: k for k, n in enumerate(graph)}
    values = [v for v in graph.inputs] + [o for n in graph for o in n.outputs]
    for x in values:
        if x.dtype is None or x.dtype.name not in ("FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE") or \
                (x.const_value is not None and not x.is_graph_input()):
            continue
        region = _region(x, taken)
        if len(region) < 2 or not any(n.op_type in _NONLINEAR for n in region):
            continue
        region.sort(key=lambda n: order[n])
        inside = set(region)
        escapes = [o for n in region for o in n.outputs
                   if o.is_graph_output() or any(r not in inside for r, _ in o.uses())]
        if len(escapes) != 1 or escapes[0].producer() is not region[-1]:
            continue
        probe = np.linspace(-6, 6, 241)
        vals = {x: probe}
        try:
            with np.errstate(all="ignore"):
                for n in region:
                    args = [None if i is None else vals[i] if i in vals else _scalar(i) for i in n.inputs]
                    vals[n.outputs[0]] = _eval(n, args)
        except (KeyError, TypeError):
            continue
        got = vals[region[-1].outputs[0]]
        tol = 1e-5 if x.dtype.name in ("FLOAT", "DOUBLE") else 3e-3
        present = {n.op_type for n in region}
        for needs, fn, (cls, kwargs) in _KNOWN.values():
            ref = fn(probe)
            if needs & present and np.all(np.abs(got - ref) <= tol * np.maximum(1, np.abs(ref))):
                b.dropped.update(region[:-1])
                taken.update(region)

                def convert(ctx, x=x, cls=cls, kwargs=kwargs):
                    held = ctx.b.env[x.name][1] if x.name in ctx.b.env else None
                    if held is None:
                        raise Unsupported("the activation's input is a constant or unconverted")
                    return Held(ctx.layer(cls, ctx.b.tensor(x, held), **kwargs), held)

                b.fusions[region[-1]] = convert
                break
