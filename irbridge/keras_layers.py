"""The few custom Keras layers exported models may hold, registered on import.

Each is a small, serializable layer that `keras.saving.load_model` restores after
`import irbridge.keras_layers`. All work on channels-last (NHWC) data.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="irbridge")
class LRN(keras.layers.Layer):
    """Local response normalization across channels (Caffe/ONNX convention):
    y = x / (bias + alpha / size * sum over a window of `size` channels of x^2) ** beta."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.bias = int(size), float(alpha), float(beta), float(bias)

    def call(self, x):
        sq = ops.square(x)
        front = (self.size - 1) // 2
        back = self.size - 1 - front
        rank = len(x.shape)
        padded = ops.pad(sq, [[0, 0]] * (rank - 1) + [[front, back]])
        channels = x.shape[-1]
        window = sum(padded[..., i:i + channels] for i in range(self.size))
        return x / ops.power(self.bias + self.alpha / self.size * window, self.beta)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta,
                "bias": self.bias}


@keras.saving.register_keras_serializable(package="irbridge")
class ConstantOp(keras.layers.Layer):
    """x (op) c with a stored constant c (broadcast): add, subtract, multiply, divide, max, min.
    `reverse` computes c (op) x. The constant is a non-trainable weight saved with the model."""

    _OPS = {"add": ops.add, "subtract": ops.subtract, "multiply": ops.multiply,
            "divide": ops.divide, "maximum": ops.maximum, "minimum": ops.minimum, "power": ops.power}

    def __init__(self, op="add", shape=(), reverse=False, **kwargs):
        super().__init__(**kwargs)
        self.op, self.shape, self.reverse = op, tuple(shape), bool(reverse)
        self.constant = self.add_weight(name="constant", shape=self.shape, initializer="zeros",
                                        trainable=False)

    def call(self, x):
        c = ops.cast(self.constant, x.dtype)
        a, b = (c, x) if self.reverse else (x, c)
        return self._OPS[self.op](a, b)

    def get_config(self):
        return {**super().get_config(), "op": self.op, "shape": list(self.shape), "reverse": self.reverse}


class _PaddedPool2D(keras.layers.Layer):
    """A 2-D pool over an input padded ((top, bottom), (left, right)), pooled 'valid'."""

    def __init__(self, pool_size=(2, 2), strides=(2, 2), padding=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = tuple(pool_size), tuple(strides)
        self.padding = tuple(tuple(p) for p in padding)

    def _pads(self):
        return [[0, 0], list(self.padding[0]), list(self.padding[1]), [0, 0]]

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": [list(p) for p in self.padding]}


@keras.saving.register_keras_serializable(package="irbridge")
class MaxPooling2DPadded(_PaddedPool2D):
    """Max pooling over an input padded with -inf: the pads never win, as in ONNX and Caffe,
    even where inputs are negative."""

    def call(self, x):
        x = ops.pad(x, self._pads(), constant_values=-np.inf)
        return ops.max_pool(x, self.pool_size, self.strides, padding="valid")


@keras.saving.register_keras_serializable(package="irbridge")
class AveragePooling2DExcludePad(_PaddedPool2D):
    """Average pooling over a zero-padded input whose divisor counts only real elements
    (ONNX count_include_pad=0 with pads that TF's 'same' cannot express)."""

    def call(self, x):
        total = ops.average_pool(ops.pad(x, self._pads()), self.pool_size, self.strides, padding="valid")
        ones = ops.pad(ops.ones_like(x[:1, :, :, :1]), self._pads())
        count = ops.average_pool(ones, self.pool_size, self.strides, padding="valid")
        return total / count


@keras.saving.register_keras_serializable(package="irbridge")
class PaddedPooling(keras.layers.Layer):
    """An N-D pool (1-D, 2-D or 3-D, channels-last) with ONNX's exact padding semantics.

    `padding` holds the explicit pads per spatial axis ([begin, end]); `extra` the end pads
    ceil_mode adds (the partial last window). `mode`:
    - "max": pads (and the partial window) never win, even over negative inputs (-inf padding);
    - "average": the divisor counts the real elements, plus the explicit pads when
      `count_include_pad` (ONNX's rule; the ceil_mode overhang is never counted);
    - "lp": (sum over the window of |x|^p)^(1/p), pads counting as zeros.
    """

    def __init__(self, pool_size=(2,), strides=None, padding=None, extra=None, mode="max",
                 count_include_pad=False, p=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(k) for k in pool_size)
        n = len(self.pool_size)
        self.strides = tuple(int(s) for s in (strides or self.pool_size))
        self.padding = [list(map(int, p_)) for p_ in (padding or [[0, 0]] * n)]
        self.extra = [int(e) for e in (extra or [0] * n)]
        self.mode, self.count_include_pad, self.p = str(mode), bool(count_include_pad), int(p)

    def _pad(self, x, explicit_value, extra_value):
        rank = len(x.shape)
        x = ops.pad(x, [[0, 0]] + self.padding + [[0, 0]], constant_values=explicit_value)
        if any(self.extra):
            x = ops.pad(x, [[0, 0]] + [[0, e] for e in self.extra] + [[0, 0]] * (rank - 1 - len(self.extra)),
                        constant_values=extra_value)
        return x

    def call(self, x):
        if self.mode == "max":
            return ops.max_pool(self._pad(x, -np.inf, -np.inf), self.pool_size, self.strides, padding="valid")
        if self.mode == "lp":
            powered = ops.power(ops.abs(x), float(self.p))
            total = ops.average_pool(self._pad(powered, 0.0, 0.0), self.pool_size, self.strides, padding="valid")
            return ops.power(total * float(np.prod(self.pool_size)), 1.0 / self.p)
        total = ops.average_pool(self._pad(x, 0.0, 0.0), self.pool_size, self.strides, padding="valid")
        ones = ops.ones_like(x[:1, ..., :1])
        count = ops.average_pool(self._pad(ones, 1.0 if self.count_include_pad else 0.0, 0.0),
                                 self.pool_size, self.strides, padding="valid")
        return total / count

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding, "extra": self.extra, "mode": self.mode,
                "count_include_pad": self.count_include_pad, "p": self.p}



from .keras_tensor_layers import GELU, TensorOp  # noqa: E402,F401  (registered with these)
