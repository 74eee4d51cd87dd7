"""Keras layers for the tensor glue of transformer graphs, registered on import.

`TensorOp` is one ONNX data or shape op (MatMul of two activations, Where, Cast, Shape,
Slice, a live Reshape, ...) written with `keras.ops`: it has no trainable weights, lets
gradients through, and saves with the model (its constant operands are non-trainable
weights, its op a name from the fixed table `FUNCS`, so loading runs no code from the file).
`GELU` is the tanh approximation Keras' `Activation('gelu')` cannot select.

    y = TensorOp(op="matmul")([a, b])
    y = TensorOp(op="where", slots=["x", "c", "x"], constants=[[[], "float32"]])([mask, x])
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .keras_tensor_math import FUNCS as MORE_FUNCS

_INT_MAX = 2**31 - 1


def _int(v):
    return v if isinstance(v, int) else ops.cast(v, "int64")


def _shape(x, start=0, end=None, perm=None):
    dims = [ops.cast(d, "int64") for d in ops.shape(x)]
    dims = [dims[p] for p in perm][start:end] if perm is not None else dims[start:end]
    return ops.stack(dims) if dims else ops.zeros((0,), "int64")


def _dim(x, axis):
    d = ops.shape(x)[axis]
    return d if isinstance(d, int) else ops.cast(d, "int64")


def _bound(v):
    """A slice bound: a Python int (clamped, None past the ends) or a scalar tensor."""
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return None if abs(v) >= _INT_MAX else v
    return ops.cast(ops.clip(v, -_INT_MAX, _INT_MAX), "int32")  # TF slices take int32 bounds


def _slice(x, starts, ends, axes=None, steps=None, perm=None, count=None):
    """ONNX Slice; with `perm`, x holds the value transposed by perm and the ONNX axes are
    cut where perm holds them (the output held in perm too). `count`: how many axes are cut,
    where neither the axes nor the starts tell before run time."""
    x = ops.convert_to_tensor(x)
    rank = len(x.shape)
    n = count if count is not None else len(np.asarray(axes).reshape(-1)) if axes is not None else int(starts.shape[0])
    axes = list(range(n)) if axes is None else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    if perm is not None:
        axes = [list(perm).index(a) for a in axes]
    steps = [1] * n if steps is None else [int(s) for s in np.asarray(steps).reshape(-1)]
    index = [slice(None)] * rank

    def item(v, k):
        return int(v[k]) if isinstance(v, np.ndarray) else v[k]

    for k, a in enumerate(axes):
        index[a] = slice(_bound(item(starts, k)), _bound(item(ends, k)), steps[k])
    return x[tuple(index)]


def _gather(data, indices, axis=0):
    data = ops.convert_to_tensor(data)
    if isinstance(indices, np.ndarray) and indices.ndim == 0 and isinstance(data.shape[axis], int):
        i = int(indices) % data.shape[axis]
        return ops.take(data, i, axis=axis)
    indices = ops.convert_to_tensor(indices)
    indices = ops.where(indices < 0, indices + ops.cast(_dim(data, axis), indices.dtype), indices)
    return ops.take(data, indices, axis=axis)


def _reshape(x, shape, allowzero=0):
    if isinstance(shape, np.ndarray):
        target = [int(s) for s in shape]
        if not allowzero:
            target = [_dim(x, i) if s == 0 else s for i, s in enumerate(target)]
        if all(isinstance(s, int) for s in target):
            return ops.reshape(x, target)
        return ops.reshape(x, ops.stack([ops.cast(s, "int64") for s in target]))
    shape = ops.cast(shape, "int64")
    if not allowzero:
        n = int(shape.shape[0])
        have = _shape(x)[:n]
        if len(x.shape) < n:
            have = ops.concatenate([have, ops.zeros((n - len(x.shape),), "int64")])
        shape = ops.where(shape == 0, have, shape)
    return ops.reshape(x, shape)


def _flatten(x, axis=1):
    dims = _shape(x)
    outer = ops.prod(dims[:axis]) if axis else ops.ones((), "int64")
    inner = ops.prod(dims[axis:]) if axis < len(x.shape) else ops.ones((), "int64")
    return ops.reshape(x, ops.stack([ops.cast(outer, "int64"), ops.cast(inner, "int64")]))


def _expand(x, shape):
    zeros = ops.zeros(ops.cast(shape, "int64") if not isinstance(shape, np.ndarray) else
                      [int(s) for s in shape], dtype="bool" if x.dtype == "bool" else x.dtype)
    return ops.logical_or(x, zeros) if x.dtype == "bool" else x + zeros


def _unsqueeze(x, axes):
    rank = len(x.shape) + np.asarray(axes).size
    for a in sorted(int(a) % rank for a in np.asarray(axes).reshape(-1)):
        x = ops.expand_dims(x, a)
    return x


def _squeeze(x, axes=None):
    if axes is None:
        return ops.squeeze(x)
    return ops.squeeze(x, axis=tuple(int(a) % len(x.shape) for a in np.asarray(axes).reshape(-1)))


def _reduce(fn):
    def reduce(x, axes=None, keepdims=1, noop_with_empty_axes=0):
        if axes is None or np.asarray(axes).size == 0:
            if noop_with_empty_axes:
                return x
            axes = None
        else:
            axes = tuple(int(a) % max(len(x.shape), 1) for a in np.asarray(axes).reshape(-1))
        return fn(x, axis=axes, keepdims=bool(keepdims))

    return reduce


def _clip(x, lo=None, hi=None):
    """ONNX Clip: min(max(x, lo), hi), so that lo > hi gives hi everywhere."""
    if lo is not None:
        x = ops.maximum(x, ops.cast(ops.reshape(lo, ()), x.dtype))
    if hi is not None:
        x = ops.minimum(x, ops.cast(ops.reshape(hi, ()), x.dtype))
    return x


def _scalar(v, dtype="int32"):
    """An ONNX scalar input (0-D or one element) as a Python int, or a 0-D tensor at run time."""
    if isinstance(v, np.ndarray):
        return int(v.reshape(-1)[0])
    return ops.reshape(ops.cast(v, dtype), ())


def _cumsum(x, axis, exclusive=0, reverse=0):
    import tensorflow as tf  # its cumsum takes the axis as a tensor, and exclusive/reverse

    return tf.math.cumsum(x, axis=_scalar(axis), exclusive=bool(exclusive), reverse=bool(reverse))


def _range(start, limit, delta, dtype="int64"):
    import tensorflow as tf  # keras.ops.arange needs Python numbers for its length

    return tf.range(ops.cast(start, dtype), ops.cast(limit, dtype), ops.cast(delta, dtype))


def _trilu(x, k=None, upper=1):
    """ONNX Trilu for any diagonal k (TF's band part refuses a k past the matrix)."""
    k = 0 if k is None else _scalar(k)
    shape = ops.shape(x)
    offset = ops.arange(shape[-1])[None, :] - ops.arange(shape[-2])[:, None]  # column - row
    keep = offset >= k if upper else offset <= k
    return ops.where(keep, x, ops.zeros_like(x))


def _int_divide(a, b):
    """Integer division truncating toward zero (ONNX Div on integers)."""
    q = ops.floor_divide(ops.abs(a), ops.abs(b))
    return ops.where((a < 0) != (b < 0), -q, q)


def _divide(a, b):
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    if "int" in str(a.dtype):
        return _int_divide(a, ops.cast(b, a.dtype))
    return ops.divide(a, ops.cast(b, a.dtype))


def _binary(fn):
    def apply(a, b):
        a = ops.convert_to_tensor(a)
        return fn(a, ops.cast(b, a.dtype))

    return apply


def _variadic(fn):
    def apply(*xs):
        y = xs[0]
        for x in xs[1:]:
            y = fn(y, x)
        return y

    return apply


def _mod(a, b, fmod=0):
    if fmod:
        return ops.sign(a) * ops.mod(ops.abs(a), ops.abs(b))
    return ops.mod(a, b)


def _pow(a, b):
    a = ops.convert_to_tensor(a)
    if isinstance(b, np.ndarray) and b.size == 1 and float(b) == 2.0:
        return ops.square(a)
    return ops.power(a, ops.cast(b, a.dtype))


def _constant_of_shape(shape, value=0.0, dtype="float32"):
    shape = [int(s) for s in shape] if isinstance(shape, np.ndarray) else ops.cast(shape, "int64")
    import tensorflow as tf

    return tf.fill(shape, tf.constant(value, dtype=dtype))


def _split(x, split=None, axis=0, num_outputs=None):
    if split is None:
        n, size = int(num_outputs), x.shape[axis]
        if size is None or size % n == 0:
            return tuple(ops.split(x, n, axis=axis))
        chunk = -(-size // n)  # opset 18: ceil-sized parts, the last one smaller
        return tuple(ops.split(x, [chunk * k for k in range(1, n)], axis=axis))
    sizes = [int(s) for s in np.asarray(split).reshape(-1)]
    return tuple(ops.split(x, list(np.cumsum(sizes)[:-1]), axis=axis))


def _gather_nd(data, indices, batch_dims=0):
    import tensorflow as tf

    data, indices = ops.convert_to_tensor(data), ops.convert_to_tensor(indices)
    dims = tf.cast(tf.shape(data)[batch_dims:batch_dims + indices.shape[-1]], indices.dtype)
    indices = tf.where(indices < 0, indices + dims, indices)
    return tf.gather_nd(data, indices, batch_dims=batch_dims)


def _hard_sigmoid(x, alpha=0.2, beta=0.5):
    return ops.clip(x * alpha + beta, 0.0, 1.0)


def _argreduce(fn):
    def apply(x, axis=0, keepdims=1, select_last_index=0):
        if select_last_index:
            n = ops.shape(x)[axis]
            y = (n - 1) - fn(ops.flip(x, axis=axis), axis=axis)
        else:
            y = fn(x, axis=axis)
        y = ops.cast(y, "int64")
        return ops.expand_dims(y, axis) if keepdims else y

    return apply


FUNCS = {
    "matmul": lambda a, b: ops.matmul(a, ops.cast(b, a.dtype)),
    "einsum": lambda *xs, equation: ops.einsum(equation, *xs),
    "transpose": lambda x, perm: ops.transpose(x, perm),
    "shape": _shape,
    "size": lambda x: ops.cast(ops.size(x), "int64"),
    "gather": _gather,
    "gather_elements": lambda d, i, axis=0: ops.take_along_axis(
        d, ops.where(i < 0, i + ops.cast(_dim(d, axis), i.dtype), i), axis=axis),
    "slice": _slice,
    "concat": lambda *xs, axis: ops.concatenate([ops.cast(x, xs[0].dtype) for x in xs], axis=axis),
    "unsqueeze": _unsqueeze,
    "squeeze": _squeeze,
    "reshape": _reshape,
    "flatten": _flatten,
    "expand": _expand,
    "tile": lambda x, repeats: ops.tile(x, [int(r) for r in repeats] if isinstance(repeats, np.ndarray)
                                        else ops.cast(repeats, "int32")),
    "where": lambda c, a, b: ops.where(ops.cast(c, "bool"), a, ops.cast(b, ops.convert_to_tensor(a).dtype)),
    "equal": _binary(ops.equal), "less": _binary(ops.less), "greater": _binary(ops.greater),
    "less_equal": _binary(ops.less_equal), "greater_equal": _binary(ops.greater_equal),
    "logical_not": ops.logical_not, "logical_and": ops.logical_and, "logical_or": ops.logical_or,
    "logical_xor": ops.logical_xor,
    "cast": lambda x, to: ops.cast(x, to),
    "cumsum": _cumsum,
    "range": _range,
    "constant_of_shape": _constant_of_shape,
    "trilu": _trilu,
    "add": _variadic(_binary(ops.add)), "subtract": _binary(ops.subtract),
    "multiply": _variadic(_binary(ops.multiply)), "divide": _divide, "power": _pow,
    "maximum": _variadic(_binary(ops.maximum)), "minimum": _variadic(_binary(ops.minimum)),
    "mean": lambda *xs: _variadic(_binary(ops.add))(*xs) / len(xs),
    "mod": _mod,
    "erf": ops.erf, "sqrt": ops.sqrt, "exp": ops.exp, "log": ops.log, "negative": ops.negative,
    "abs": ops.abs, "reciprocal": ops.reciprocal, "floor": ops.floor, "ceil": ops.ceil,
    "round": ops.round, "sign": ops.sign, "sin": ops.sin, "cos": ops.cos, "tan": ops.tan,
    "asin": ops.arcsin, "acos": ops.arccos, "atan": ops.arctan, "sinh": ops.sinh, "cosh": ops.cosh,
    "asinh": ops.arcsinh, "acosh": ops.arccosh, "atanh": ops.arctanh, "isnan": ops.isnan,
    "isinf": lambda x, detect_negative=1, detect_positive=1: ops.logical_or(
        ops.logical_and(ops.isinf(x), x > 0) if detect_positive else ops.zeros_like(x, "bool"),
        ops.logical_and(ops.isinf(x), x < 0) if detect_negative else ops.zeros_like(x, "bool")),
    "reduce_mean": _reduce(ops.mean), "reduce_sum": _reduce(ops.sum), "reduce_max": _reduce(ops.max),
    "reduce_min": _reduce(ops.min), "reduce_prod": _reduce(ops.prod),
    "reduce_l1": _reduce(lambda x, **k: ops.sum(ops.abs(x), **k)),
    "reduce_l2": _reduce(lambda x, **k: ops.sqrt(ops.sum(ops.square(x), **k))),
    "reduce_sum_square": _reduce(lambda x, **k: ops.sum(ops.square(x), **k)),
    "reduce_log_sum": _reduce(lambda x, **k: ops.log(ops.sum(x, **k))),
    "reduce_log_sum_exp": _reduce(ops.logsumexp),
    "argmax": _argreduce(ops.argmax), "argmin": _argreduce(ops.argmin),
    "softmax": lambda x, axis=-1: ops.softmax(x, axis=axis),
    "log_softmax": lambda x, axis=-1: ops.log_softmax(x, axis=axis),
    "hard_sigmoid": _hard_sigmoid,
    "clip": _clip,
    "split": _split,
    "identity": lambda x: x,
    "constant": lambda anchor, c: c,  # a stored array as a tensor (the anchor input only places it)
    "gather_nd": _gather_nd,
    **MORE_FUNCS,
}


@keras.saving.register_keras_serializable(package="irbridge")
class TensorOp(keras.layers.Layer):
    """`FUNCS[op](*operands, **attrs)`: one ONNX op in keras.ops, no trainable weights.

    `slots` lists the operands in order: "x" takes the next input tensor, "c" the next
    stored constant, None an absent optional operand, and {"value": ..., "dtype": ...} a
    small literal (a numpy array at call time: axes, starts, shapes known statically).
    `constants` gives each stored constant's [shape, dtype]; their values are the layer's
    (non-trainable) weights.
    """

    def __init__(self, op="identity", attrs=None, slots=None, constants=(), known=None, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if op not in FUNCS:
            raise ValueError(f"TensorOp: unknown op {op!r}")
        self.op, self.attrs = op, dict(attrs or {})
        self.slots = list(slots) if slots is not None else None
        self.known = None if known is None else list(known)  # the output's sizes known statically
        self.constant_specs = [[list(s), str(d)] for s, d in constants]
        self.constant_vars = [self.add_weight(name=f"constant_{i}", shape=tuple(s),
                                              dtype="uint8" if d == "bool" else d,
                                              initializer="zeros", trainable=False)
                              for i, (s, d) in enumerate(self.constant_specs)]

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs):
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        consts = [ops.cast(v, "bool") if d == "bool" else v.value
                  for v, (_, d) in zip(self.constant_vars, self.constant_specs)]
        slots = self.slots if self.slots is not None else ["x"] * len(xs)
        args, xi, ci = [], iter(xs), iter(consts)
        for s in slots:
            if isinstance(s, dict):
                args.append(np.asarray(s["value"], dtype=s["dtype"]))
            else:
                args.append(next(xi) if s == "x" else next(ci) if s == "c" else None)
        while args and args[-1] is None:
            args.pop()
        y = FUNCS[self.op](*args, **self.attrs)
        if self.known is not None and not isinstance(y, (list, tuple)) and len(y.shape) == len(self.known):
            import tensorflow as tf

            y = tf.ensure_shape(y, self.known)
        return y

    def get_config(self):
        return {**super().get_config(), "op": self.op, "attrs": self.attrs, "slots": self.slots,
                "constants": self.constant_specs, "known": self.known}


@keras.saving.register_keras_serializable(package="irbridge")
class GELU(keras.layers.Layer):
    """GELU, exact (erf) or with its tanh approximation (`approximate=True`)."""

    def __init__(self, approximate=False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, x):
        return keras.activations.gelu(x, approximate=self.approximate)

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}
