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
