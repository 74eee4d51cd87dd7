"""Elementwise math, comparison and logic ops -> Python operators and torch functions."""

from __future__ import annotations

import functools
import operator

import torch
from torch import nn

from .. import runtime
from ..registry import converter
from . import gelu_chain, shapes
from ._chain import stand_in

_BINARY = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mul": operator.mul,
    "Equal": torch.eq,
    "Less": torch.lt,
    "LessOrEqual": torch.le,
    "Greater": torch.gt,
    "GreaterOrEqual": torch.ge,
    "And": torch.logical_and,
    "Or": torch.logical_or,
    "Xor": torch.logical_xor,
    "BitwiseAnd": torch.bitwise_and,
    "BitwiseOr": torch.bitwise_or,
    "BitwiseXor": torch.bitwise_xor,
}

_UNARY = {
    "Abs": torch.abs, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt,
    "Reciprocal": torch.reciprocal, "Floor": torch.floor, "Ceil": torch.ceil, "Round": torch.round,
    "Sign": torch.sign, "Sin": torch.sin, "Cos": torch.cos, "Tan": torch.tan, "Asin": torch.asin,
    "Acos": torch.acos, "Atan": torch.atan, "Sinh": torch.sinh, "Cosh": torch.cosh,
    "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh, "Erf": torch.erf,
    "IsNaN": torch.isnan, "Not": torch.logical_not, "BitwiseNot": torch.bitwise_not,
}


def _binary(op_type, fn):
    def convert(ctx):
        if op_type == "Mul" and (g := gelu(ctx)) is not None:
            return g
        if op_type in ("Add", "Sub", "Mul") and (d := shapes.arithmetic(ctx, op_type)) is not None:
            return d
        if op_type == "Equal" and (d := shapes.equal(ctx)) is not None:
            return d
        a, b = ctx.operand(0, 1), ctx.operand(1, 0)
        if not hasattr(a, "op") and not hasattr(b, "op"):
            a = ctx.x(0)  # both constant: keep a tensor so the result is one
        if not hasattr(a, "op"):  # a number on the left: keep the tensor's type for the result
            return ctx.call(fn, ctx.x(0), b)
        return ctx.call(fn, a, b)

    convert.__name__ = op_type.lower()
    converter(op_type)(convert)


def _unary(op_type, fn):
    def convert(ctx):
        return ctx.call(fn, ctx.x(0))

    convert.__name__ = op_type.lower()
    converter(op_type)(convert)


for _op, _fn in _BINARY.items():
    _binary(_op, _fn)
for _op, _fn in _UNARY.items():
    _unary(_op, _fn)


def gelu(ctx):
    """nn.GELU for the decomposed erf GELU that starts at this node (gelu_chain), else None."""
    found = gelu_chain.match(ctx.node)
    if found is None or ctx.dtype(0) is None or not ctx.dtype(0).is_floating_point:
        return None
    x, rest = found
    y = ctx.call_module(nn.GELU, ctx.builder.value_of(x))
    stand_in(ctx.builder, rest, y)
    return y


@converter("Div")
def div(ctx):
    if (g := gelu(ctx)) is not None:
        return g
    if (d := shapes.arithmetic(ctx, "Div")) is not None:
        return d
    dtype = ctx.dtype(0)
    if dtype is not None and dtype.is_floating_point:
        return ctx.call(operator.truediv, ctx.x(0), ctx.operand(1, 0))
    return ctx.call(runtime.onnx_div, ctx.x(0), ctx.x(1))


@converter("Pow")
def pow_(ctx):
    exponent = ctx.operand(1, 0)
    if exponent == 2 and not hasattr(exponent, "op") and ctx.dtype(0) in (torch.float32, torch.float64):
        return ctx.call(operator.mul, ctx.x(0), ctx.x(0))
    return ctx.call(runtime.onnx_pow, ctx.x(0), exponent)


@converter("Mod")
def mod(ctx):
    fn = torch.fmod if ctx.attr("fmod", 0) else torch.remainder
    return ctx.call(fn, ctx.x(0), ctx.x(1))


@converter("IsInf")
def isinf(ctx):
    neg, pos = ctx.attr("detect_negative", 1), ctx.attr("detect_positive", 1)
    fn = torch.isinf if neg and pos else torch.isneginf if neg else torch.isposinf
    if not neg and not pos:
        return ctx.call(torch.zeros_like, ctx.x(0), dtype=torch.bool)
    return ctx.call(fn, ctx.x(0))


@converter("BitShift")
def bit_shift(ctx):
    fn = torch.bitwise_left_shift if ctx.attr("direction") in ("LEFT", b"LEFT") else torch.bitwise_right_shift
    return ctx.call(fn, ctx.x(0), ctx.x(1))


def _variadic(op_type, fn, mean=False):
    def convert(ctx):
        args = [ctx.x(i) for i in range(ctx.num_inputs)]
        y = functools.reduce(lambda a, b: ctx.call(fn, a, b), args[1:], args[0])
        if len(args) == 1:
            y = ctx.call(torch.clone, y)
        if mean:
            y = ctx.call(operator.truediv, y, float(len(args)))
        return y

    convert.__name__ = op_type.lower()
    converter(op_type)(convert)


_variadic("Sum", operator.add)
_variadic("Mean", operator.add, mean=True)
_variadic("Max", torch.maximum)
_variadic("Min", torch.minimum)


@converter("Where")
def where(ctx):
    if (d := shapes.where(ctx)) is not None:
        return d
    return ctx.call(torch.where, ctx.x(0), ctx.x(1), ctx.x(2))
