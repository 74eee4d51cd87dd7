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


def _keys_cubic(d, a):
    """The cubic convolution kernel (Keys) with coefficient `a` at distances `d`."""
    d = ops.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return ops.where(d <= 1, near, ops.where(d < 2, far, ops.zeros_like(d)))


@keras.saving.register_keras_serializable(package="irbridge")
class Resize(keras.layers.Layer):
    """ONNX Resize over any axes of a tensor held in any layout, exactly as onnxruntime does it.

    Each axis in `axes` (axes of the data as held) is resized in turn, separably: its output
    length is `sizes[i]`, the live length of axis `refs[i] = [k, axis]` of input k (sizes read
    from another tensor at run time), or floor(length * `scales[i]`); the coordinate transform,
    nearest rounding, linear/cubic taps (cubic_coeff_a, exclude_outside, antialias) and
    tf_crop_and_resize's roi/extrapolation are ONNX's. Lengths are read live, so free dims stay
    free. `antialias_scales` holds the (static) scale of each axis antialiasing widens.
    """

    def __init__(self, axes=(1, 2), sizes=None, scales=None, refs=None, mode="nearest",
                 coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
                 cubic_coeff_a=-0.75, exclude_outside=False, extrapolation_value=0.0, roi=None,
                 antialias=False, **kwargs):
        super().__init__(**kwargs)
        n = len(axes)
        self.axes = [int(a) for a in axes]
        self.sizes = list(sizes or [None] * n)
        self.scales = list(scales or [None] * n)
        self.refs = list(refs or [None] * n)
        self.roi = list(roi or [None] * n)
        self.mode, self.ctm, self.nearest_mode = str(mode), str(coordinate_transformation_mode), str(nearest_mode)
        self.cubic_coeff_a, self.exclude_outside = float(cubic_coeff_a), bool(exclude_outside)
        self.extrapolation_value, self.antialias = float(extrapolation_value), bool(antialias)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "sizes": self.sizes, "scales": self.scales,
                "refs": self.refs, "mode": self.mode, "coordinate_transformation_mode": self.ctm,
                "nearest_mode": self.nearest_mode, "cubic_coeff_a": self.cubic_coeff_a,
                "exclude_outside": self.exclude_outside, "extrapolation_value": self.extrapolation_value,
                "roi": self.roi, "antialias": self.antialias}

    @staticmethod
    def _read(spec, inputs, dtype):
        """A number given in the config, or ["input", k, j]: element j of input k (read at run time)."""
        if isinstance(spec, (list, tuple)):
            return ops.cast(ops.reshape(inputs[spec[1]], (-1,))[spec[2]], dtype)
        return spec

    def _coordinates(self, i, out_len, in_len, inputs):
        """(source coordinate of each output index, its scale) for axis i, in float32."""
        f = "float32"
        o = ops.cast(ops.arange(out_len), f)
        n_in, n_out = ops.cast(in_len, f), ops.cast(out_len, f)
        scale = ops.cast(self._read(self.scales[i], inputs, f), f) if self.scales[i] is not None else n_out / n_in
        ctm = self.ctm
        if ctm == "asymmetric":
            x = o / scale
        elif ctm == "tf_half_pixel_for_nn":
            x = (o + 0.5) / scale
        elif ctm == "align_corners":
            x = ops.where(n_out > 1, o * (n_in - 1) / ops.maximum(n_out - 1, 1.0), ops.zeros_like(o))
        elif ctm == "pytorch_half_pixel":
            x = ops.where(n_out > 1, (o + 0.5) / scale - 0.5, ops.zeros_like(o))
        elif ctm == "half_pixel_symmetric":
            offset = n_in / 2 * (1 - n_out / (scale * n_in))
            x = offset + (o + 0.5) / scale - 0.5
        elif ctm == "tf_crop_and_resize":
            start, end = (self._read(r, inputs, f) for r in self.roi[i])
            x = ops.where(n_out > 1, start * (n_in - 1) + o * (end - start) * (n_in - 1) / ops.maximum(n_out - 1, 1.0),
                          0.5 * (start + end) * (n_in - 1) + ops.zeros_like(o))
        else:  # half_pixel
            x = (o + 0.5) / scale - 0.5
        return x, scale

    def _axis(self, x, inputs, i):
        axis = self.axes[i]
        in_len = ops.shape(x)[axis]
        scale = self.scales[i]
        if isinstance(self.sizes[i], (list, tuple)):
            out_len = self._read(self.sizes[i], inputs, "int32")
        elif self.sizes[i] is not None:
            out_len = int(self.sizes[i])
        elif self.refs[i] is not None:
            out_len = ops.shape(inputs[self.refs[i][0]])[self.refs[i][1]]
        elif isinstance(in_len, int) and not isinstance(scale, (list, tuple)):
            out_len = int(np.floor(np.float32(in_len) * np.float32(scale)))
        else:
            out_len = ops.cast(ops.floor(ops.cast(in_len, "float32") * self._read(scale, inputs, "float32")), "int32")
        coord, _ = self._coordinates(i, out_len, in_len, inputs)
        last = ops.cast(in_len, "int32") - 1
        bcast = [1] * len(x.shape)
        bcast[axis] = -1

        def take(idx):
            return ops.take(x, ops.clip(idx, 0, last), axis=axis)

        if self.mode == "nearest":
            r = {"round_prefer_floor": lambda c: ops.ceil(c - 0.5), "round_prefer_ceil": lambda c: ops.floor(c + 0.5),
                 "floor": ops.floor, "ceil": ops.ceil}[self.nearest_mode](coord)
            y = take(ops.cast(r, "int32"))
        else:
            s = 1.0
            if self.antialias and isinstance(self.scales[i], (int, float)) and self.scales[i] < 1:
                s = float(self.scales[i])
            support = 1.0 if self.mode == "linear" else 2.0
            start = int(np.floor(-support / s) + 1)
            base = ops.floor(coord)
            y, total = 0.0, 0.0
            for j in range(2 - 2 * start):
                idx = base + (start + j)
                d = (idx - coord) * s
                wgt = ops.maximum(1 - ops.abs(d), 0.0) if self.mode == "linear" else _keys_cubic(d, self.cubic_coeff_a)
                if self.exclude_outside:
                    inside = ops.logical_and(idx >= 0, idx <= ops.cast(last, "float32"))
                    wgt = ops.where(inside, wgt, ops.zeros_like(wgt))
                total = total + wgt
                y = y + take(ops.cast(idx, "int32")) * ops.reshape(ops.cast(wgt, x.dtype), bcast)
            if self.exclude_outside or s < 1:
                y = y / ops.reshape(ops.cast(total, x.dtype), bcast)
        outside = None
        if self.ctm == "tf_crop_and_resize":
            outside = ops.reshape(ops.logical_or(coord < 0, coord > ops.cast(last, "float32")), bcast)
        return y, outside

    def call(self, inputs):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        x, outside = inputs[0], []
        for i in range(len(self.axes)):
            x, out = self._axis(x, inputs, i)
            if out is not None:
                outside.append(out)
        for out in outside:
            x = ops.where(out, ops.cast(self.extrapolation_value, x.dtype), x)
        return x


@keras.saving.register_keras_serializable(package="irbridge")
class OnnxRecurrent(keras.layers.Layer):
    """ONNX LSTM / GRU / RNN whose weights W, R, B are run-time tensors (keras.layers.LSTM
    and friends hold theirs as variables). Takes the ONNX inputs present, as listed in `slots`
    (X, W, R, B, sequence_lens, initial_h, initial_c) in ONNX order and `layout`, and returns
    Y, Y_h (and Y_c) in ONNX shapes. `activations`: Keras names, per direction."""

    def __init__(self, op="LSTM", hidden=1, direction="forward", activations=(), linear_before_reset=0,
                 layout=0, slots=(), **kwargs):
        super().__init__(**kwargs)
        self.op, self.hidden, self.direction, self.layout = op, int(hidden), direction, int(layout)
        self.activations, self.linear_before_reset = list(activations), int(linear_before_reset)
        self.slots = list(slots)

    def _step(self, w, r, wb, rb, acts):
        f, g = keras.activations.get(acts[0]), keras.activations.get(acts[min(1, len(acts) - 1)])
        h_act, n = keras.activations.get(acts[-1]), self.hidden

        def step(carry, xm):  # xm: the step's input with its mask (0/1) as a last column
            h, c = carry
            x, m = xm[:, :-1], xm[:, -1] > 0.5
            xw = ops.matmul(x, ops.transpose(w)) + wb
            hr = ops.matmul(h, ops.transpose(r)) + rb
            if self.op == "LSTM":  # gates [i o f c]
                a = xw + hr
                i, o, fg, cc = (a[:, k * n:(k + 1) * n] for k in range(4))
                c_new = f(fg) * c + f(i) * g(cc)
                h_new = f(o) * h_act(c_new)
            elif self.op == "GRU":  # gates [z r h]
                z = f(xw[:, :n] + hr[:, :n])
                rr = f(xw[:, n:2 * n] + hr[:, n:2 * n])
                if self.linear_before_reset:
                    hh = g(xw[:, 2 * n:] + rr * hr[:, 2 * n:])
                else:
                    hh = g(xw[:, 2 * n:] + ops.matmul(rr * h, ops.transpose(r[2 * n:])) + rb[2 * n:])
                h_new, c_new = (1 - z) * hh + z * h, c
            else:
                h_new, c_new = f(xw + hr), c
            keep = ops.expand_dims(m, 1)
            carry = (ops.where(keep, h_new, h), ops.where(keep, c_new, c))
            return carry, (ops.where(keep, h_new, 0.0), carry[1])  # TF's scan: outputs shaped as the carry

        return step

    def call(self, inputs):
        given = dict(zip(self.slots, inputs if isinstance(inputs, (list, tuple)) else [inputs]))
        x = given["X"] if self.layout == 0 else ops.transpose(given["X"], (1, 0, 2))  # (seq, batch, in)
        dirs = 2 if self.direction == "bidirectional" else 1
        n, gates = self.hidden, {"LSTM": 4, "GRU": 3, "RNN": 1}[self.op]
        steps = ops.cumsum(ops.ones_like(x[:, :, 0]), axis=0)  # 1..seq down the time axis
        lens = given.get("sequence_lens")
        mask = steps > 0 if lens is None else steps <= ops.cast(ops.expand_dims(lens, 0), steps.dtype)
        zeros = ops.zeros_like(ops.repeat(x[0, :, :1], n, axis=1))
        ys, hs, cs = [], [], []
        per_dir = len(self.activations) // dirs
        for d in range(dirs):
            b = given.get("B")
            none = ops.zeros((gates * n,), dtype=x.dtype)
            wb, rb = (b[d, :gates * n], b[d, gates * n:]) if b is not None else (none, none)
            states = []
            for key in ("initial_h", "initial_c"):
                s = given.get(key)
                states.append(zeros if s is None else (s[d] if self.layout == 0 else s[:, d]))
            step = self._step(given["W"][d], given["R"][d], wb, rb, self.activations[d * per_dir:(d + 1) * per_dir])
            backward = self.direction == "reverse" or d == 1
            xm = ops.concatenate([x, ops.expand_dims(ops.cast(mask, x.dtype), 2)], axis=2)
            (h, c), (y, _) = ops.scan(step, tuple(states), xm, reverse=backward)
            ys.append(y)
            hs.append(h)
            cs.append(c)
        y = ops.stack(ys, axis=1)  # (seq, dirs, batch, hidden)
        if self.layout == 1:
            y = ops.transpose(y, (2, 0, 1, 3))
        axis = 0 if self.layout == 0 else 1
        out = [y, ops.stack(hs, axis=axis)]
        return out + [ops.stack(cs, axis=axis)] if self.op == "LSTM" else out

    def get_config(self):
        return {**super().get_config(), "op": self.op, "hidden": self.hidden, "direction": self.direction,
                "activations": self.activations, "linear_before_reset": self.linear_before_reset,
                "layout": self.layout, "slots": self.slots}
