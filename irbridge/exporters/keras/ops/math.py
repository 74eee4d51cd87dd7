"""Elementwise arithmetic, comparisons, logic, Where, Cast and reductions.

Two float tensors of one rank and dtype meet in a Keras merge layer (Add, Multiply, ...) and a
float tensor with a constant in `ConstantOp`, both in whatever layout the tensors are held;
everything else (integers, booleans, broadcasting across ranks) is a `TensorOp` of keras.ops.
"""

from __future__ import annotations

import keras

from .... import keras_layers
from ..builder import Held
from ..registry import Unsupported, converter
from .pooling import spatial_mean_pool
from .tensor import ident, op


def _is_float(ctx, i) -> bool:
    return (ctx.dtype_name(ctx.node.inputs[i]) or "float32").startswith(("float", "bfloat"))


def layout(ctx):
    """The layout to compute an elementwise op in: the one its run-time operands of the output's
    rank are all held in (a transposed view stays a view), else the assigned one."""
    rank = ctx.rank(0)
    held = {ctx.b.env[v.name][1] for v in ctx.node.inputs
            if v is not None and v.name in ctx.b.env and v.shape is not None and len(v.shape) == rank}
    return next(iter(held)) if len(held) == 1 and rank and next(iter(held))[0] == 0 else ctx.perm_out(0)


def elementwise(ctx, name, attrs=None):
    """TensorOp of an elementwise op in the layout of the output (constants laid out to match)
    when every run-time operand has the output's rank; in ONNX order otherwise."""
    perm, rank = layout(ctx), ctx.rank(0)
    live = [i for i in range(len(ctx.node.inputs)) if ctx.has_input(i) and ctx.const(i) is None]
    if perm != ident(len(perm)) and all(ctx.rank(i) == len(perm) for i in live):
        return Held(ctx.tensor_op(name, attrs, perm=perm, broadcast=True), perm)
    del rank
    return op(ctx, name, attrs)


_MERGE = {"Add": (keras.layers.Add, "add"), "Sum": (keras.layers.Add, "add"),
          "Sub": (keras.layers.Subtract, "subtract"), "Mul": (keras.layers.Multiply, "multiply"),
          "Max": (keras.layers.Maximum, "maximum"), "Min": (keras.layers.Minimum, "minimum"),
          "Div": (None, "divide"), "Pow": (None, "power"), "Mean": (None, "mean")}


def _merge(op_type):
    cls, name = _MERGE[op_type]

    def convert(ctx):
        perm = layout(ctx)
        n = len(ctx.node.inputs)
        consts = [ctx.const(i) for i in range(n)]
        floats = all(_is_float(ctx, i) for i in range(n))
        if n == 1 and floats:
            return Held(ctx.x(0, perm), perm)
        if n == 2 and floats and (consts[0] is None) != (consts[1] is None) and name != "mean" \
                and ctx.rank(1 if consts[0] is not None else 0) == len(perm) and \
                ctx.dtype_name(ctx.node.inputs[0]) == ctx.dtype_name(ctx.node.inputs[1]):
            k = 0 if consts[0] is not None else 1
            c = consts[k]
            c = c.reshape((1,) * (len(perm) - c.ndim) + c.shape).transpose(perm)
            return Held(ctx.layer(keras_layers.ConstantOp, ctx.x(1 - k, perm), weights=[c], op=name,
                                  shape=list(c.shape), reverse=k == 0), perm)
        dtypes = {ctx.dtype_name(v) for v in ctx.node.inputs}
        shapes = [ctx.shape(i) for i in range(n)]
        if cls is not None and floats and len(dtypes) == 1 and all(c is None for c in consts) and \
                len({len(s) for s in shapes if s is not None}) == 1 and None not in shapes and \
                len({s[0] for s in shapes}) == 1:
            return Held(ctx.layer(cls, *[ctx.x(i, perm) for i in range(n)]), perm)
        return elementwise(ctx, name)

    converter(op_type)(convert)


for _op in _MERGE:
    _merge(_op)


def _simple(op_type, name, since=1, **fixed):
    def convert(ctx):
        return elementwise(ctx, name, dict(fixed))

    converter(op_type, since=since)(convert)


for _op, _name in {"Erf": "erf", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Neg": "negative",
                   "Abs": "abs", "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil",
                   "Round": "round", "Sign": "sign", "Sin": "sin", "Cos": "cos", "Tan": "tan",
                   "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh",
                   "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh", "IsNaN": "isnan",
                   "Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_equal",
                   "GreaterOrEqual": "greater_equal", "Not": "logical_not", "And": "logical_and",
                   "Or": "logical_or", "Xor": "logical_xor", "Where": "where"}.items():
    _simple(_op, _name)


for _op, _name in {"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor",
                   "BitwiseNot": "bitwise_not"}.items():
    _simple(_op, _name, since=18)


@converter("BitShift", since=11)
def bit_shift(ctx):
    return elementwise(ctx, "bit_shift", {"direction": ctx.attr("direction")})


@converter("IsInf", since=10)
def is_inf(ctx):
    return elementwise(ctx, "isinf", {"detect_negative": ctx.attr("detect_negative", 1),
                                      "detect_positive": ctx.attr("detect_positive", 1)})


@converter("Mod", since=10)
def mod(ctx):
    return elementwise(ctx, "mod", {"fmod": ctx.attr("fmod", 0)})


@converter("Cast", since=6)
def cast(ctx):
    to = ctx.dtype_name(ctx.node.outputs[0])
    if to is None:
        raise Unsupported("a Cast to a type Keras has no tensors of")
    return elementwise(ctx, "cast", {"to": to})


@converter("CastLike", since=15)
def cast_like(ctx):
    return op(ctx, "cast", {"to": ctx.dtype_name(ctx.node.outputs[0])}, inputs=[0])


@converter("CumSum", since=11)
def cumsum(ctx):
    return op(ctx, "cumsum", {"exclusive": ctx.attr("exclusive", 0), "reverse": ctx.attr("reverse", 0)})


@converter("CumProd", since=26)
def cumprod(ctx):
    return op(ctx, "cumprod", {"exclusive": ctx.attr("exclusive", 0), "reverse": ctx.attr("reverse", 0)})


def _reduce(op_type, name, axes_input_since):
    def convert(ctx):
        if op_type == "ReduceMean":  # a spatial mean keeping its dims is a global average pool
            pooled = spatial_mean_pool(ctx)
            if pooled is not None:
                return pooled
        attrs = {"keepdims": ctx.attr("keepdims", 1), "noop_with_empty_axes": ctx.attr("noop_with_empty_axes", 0)}
        if ctx.b.opset < axes_input_since:
            if ctx.attr("axes") is not None:
                attrs["axes"] = ctx.attr("axes")
            return op(ctx, name, attrs, inputs=[0])
        return op(ctx, name, attrs)

    converter(op_type, since=1)(convert)


for _op, (_name, _since) in {"ReduceMean": ("reduce_mean", 18), "ReduceSum": ("reduce_sum", 13),
                             "ReduceMax": ("reduce_max", 18), "ReduceMin": ("reduce_min", 18),
                             "ReduceProd": ("reduce_prod", 18), "ReduceL1": ("reduce_l1", 18),
                             "ReduceL2": ("reduce_l2", 18), "ReduceSumSquare": ("reduce_sum_square", 18),
                             "ReduceLogSum": ("reduce_log_sum", 18),
                             "ReduceLogSumExp": ("reduce_log_sum_exp", 18)}.items():
    _reduce(_op, _name, _since)


def _arg(op_type, name):
    def convert(ctx):
        return op(ctx, name, {"axis": ctx.attr("axis", 0), "keepdims": ctx.attr("keepdims", 1),
                              "select_last_index": ctx.attr("select_last_index", 0)})

    converter(op_type)(convert)


_arg("ArgMax", "argmax")
_arg("ArgMin", "argmin")


# --- selection -----------------------------------------------------------------------------------
@converter("TopK", since=10)
def top_k(ctx):
    return op(ctx, "top_k", {"axis": ctx.attr("axis", -1), "largest": ctx.attr("largest", 1),
                             "sorted": ctx.attr("sorted", 1)})


@converter("Hardmax", since=13)
def hardmax(ctx):
    return op(ctx, "hardmax", {"axis": ctx.attr("axis", -1)})


@converter("OneHot", since=11)
def one_hot(ctx):
    return op(ctx, "one_hot", {"axis": ctx.attr("axis", -1)})


@converter("EyeLike", since=9)
def eye_like(ctx):
    if ctx.rank(0) != 2:
        raise Unsupported("EyeLike of a tensor that is not 2-D")
    return op(ctx, "eye_like", {"k": ctx.attr("k", 0), "dtype": ctx.dtype_name(ctx.node.outputs[0])})
