"""More of `TensorOp`'s table (irbridge.keras_tensor_layers.FUNCS), in keras.ops: integer bit
ops, selection (TopK, Hardmax, OneHot, EyeLike), cumulative products, Lp and mean-variance
normalization, block rearrangement (DepthToSpace/SpaceToDepth, channels-last) and the
activations no Keras layer computes (ThresholdedRelu, Shrink, Celu, Swish). Each is written from
the ONNX op's definition."""

from __future__ import annotations

import numpy as np
from keras import ops


def _scalar(v, dtype="int32"):
    if isinstance(v, np.ndarray):
        return int(v.reshape(-1)[0])
    return ops.reshape(ops.cast(v, dtype), ())


def _bitwise(name):
    def apply(a, b=None):
        import tensorflow as tf  # keras.ops narrows uint64 to uint32

        a = tf.convert_to_tensor(a)
        fn = getattr(tf.bitwise, name)
        return fn(a) if b is None else fn(a, tf.cast(b, a.dtype))

    return apply


def _bit_shift(x, y, direction="RIGHT"):
    """ONNX BitShift: a shift by a negative amount or by the width or more gives 0 (-1 for a
    negative signed value shifted right); a signed left shift wraps as the unsigned one does."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    y = tf.cast(y, x.dtype)
    bits = x.dtype.size * 8
    out = tf.logical_or(y < 0, y >= bits) if x.dtype.is_unsigned is False else y >= bits
    safe = tf.where(out, tf.zeros_like(y), y)
    if direction == "LEFT":
        y = tf.bitwise.left_shift(x, safe)
        fill = tf.zeros_like(x)
    else:
        y = tf.bitwise.right_shift(x, safe)
        fill = tf.where(x < 0, -tf.ones_like(x), tf.zeros_like(x)) if not x.dtype.is_unsigned else tf.zeros_like(x)
    return tf.where(out, fill, y)


def _cumprod(x, axis, exclusive=0, reverse=0):
    import tensorflow as tf  # its cumprod takes exclusive/reverse and the axis as a tensor

    return tf.math.cumprod(x, axis=_scalar(axis), exclusive=bool(exclusive), reverse=bool(reverse))


def _top_k(x, k, axis=-1, largest=1, sorted=1):  # noqa: A002 - ONNX's attribute name
    """(values, int64 indices) of the k largest (smallest) along `axis`; ties keep the lower
    index first, as ONNX requires (TF's top_k does)."""
    import tensorflow as tf

    x = ops.convert_to_tensor(x)
    rank = len(x.shape)
    axis = int(axis) % rank
    moved = ops.moveaxis(x, axis, -1) if axis != rank - 1 else x
    v, i = tf.math.top_k(moved if largest else -moved, k=_scalar(k), sorted=True)
    v = v if largest else -v
    if axis != rank - 1:
        v, i = ops.moveaxis(v, -1, axis), ops.moveaxis(i, -1, axis)
    return v, ops.cast(i, "int64")


def _first_max(x, axis):
    """Boolean mask of the first maximum along `axis`."""
    is_max = ops.equal(x, ops.max(x, axis=axis, keepdims=True))
    return ops.logical_and(is_max, ops.equal(ops.cumsum(ops.cast(is_max, "int32"), axis=axis), 1))


def _hardmax(x, axis=-1):
    return ops.cast(_first_max(x, int(axis) % len(x.shape)), x.dtype)


def _lp_norm(x, axis=-1, p=2):
    """x / ||x||_p along `axis` (0 where the norm is 0)."""
    if int(p) == 1:
        norm = ops.sum(ops.abs(x), axis=axis, keepdims=True)
    else:
        norm = ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))
    zero = ops.equal(norm, 0)
    return ops.where(zero, ops.zeros_like(x), x / ops.where(zero, ops.ones_like(norm), norm))


def _mvn(x, axes=(0, 2, 3)):
    """(x - mean) / (sqrt(E[x^2] - mean^2) + 1e-9), as ONNX's MeanVarianceNormalization."""
    axes = tuple(int(a) % len(x.shape) for a in axes)
    mean = ops.mean(x, axis=axes, keepdims=True)
    std = ops.sqrt(ops.mean(ops.square(x), axis=axes, keepdims=True) - ops.square(mean))
    return (x - mean) / (std + 1e-9)


def _layer_norm(x, scale, bias=None, axis=-1, epsilon=1e-5, outputs=1):
    """ONNX LayerNormalization over axes axis.. (scale/bias broadcast from the right); with
    outputs=3 also Mean and InvStdDev (kept dims)."""
    axes = tuple(range(int(axis) % len(x.shape), len(x.shape)))
    mean = ops.mean(x, axis=axes, keepdims=True)
    d = x - mean
    inv = ops.rsqrt(ops.mean(ops.square(d), axis=axes, keepdims=True) + epsilon)
    y = d * inv * ops.cast(scale, x.dtype)
    if bias is not None:
        y = y + ops.cast(bias, x.dtype)
    return (y, mean, inv)[:int(outputs)] if int(outputs) > 1 else y


def _rms_norm(x, scale, axis=-1, epsilon=1e-5):
    axes = tuple(range(int(axis) % len(x.shape), len(x.shape)))
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=axes, keepdims=True) + epsilon) * ops.cast(scale, x.dtype)


def _group_norm(x, scale, bias, num_groups=0, epsilon=1e-5, per_channel=True):
    """ONNX GroupNormalization of x (N, C, ...) with run-time scale/bias: per channel (opset 21)
    or per group (opset 18); num_groups=0 is InstanceNormalization (a group per channel)."""
    channels = x.shape[1]
    groups = int(num_groups) or channels
    shape = ops.shape(x)
    g = ops.reshape(x, (-1, groups, channels // groups) + tuple(shape[2:]))
    axes = tuple(range(2, len(g.shape)))
    mean = ops.mean(g, axis=axes, keepdims=True)
    d = g - mean
    g = d * ops.rsqrt(ops.mean(ops.square(d), axis=axes, keepdims=True) + epsilon)
    y = ops.reshape(g, (-1,) + tuple(shape[1:]))
    if not per_channel and groups != channels:
        scale, bias = ops.repeat(scale, channels // groups), ops.repeat(bias, channels // groups)
    at = (1, channels) + (1,) * (len(x.shape) - 2)
    return y * ops.reshape(ops.cast(scale, x.dtype), at) + ops.reshape(ops.cast(bias, x.dtype), at)


def _one_hot(indices, depth, values, axis=-1):
    """ONNX OneHot: negative ids count from the end; ids outside [-depth, depth) are all off."""
    import tensorflow as tf

    values = ops.convert_to_tensor(values)
    depth = tf.cast(tf.reshape(depth, ()), "int64") if not isinstance(depth, np.ndarray) else \
        int(np.asarray(depth).reshape(-1)[0])
    ids = tf.cast(indices, "int64")
    ids = tf.where(ids < 0, ids + depth, ids)
    axis = int(axis) % (len(ids.shape) + 1)
    return tf.one_hot(ids, tf.cast(depth, "int32"), on_value=values[1], off_value=values[0], axis=int(axis),
                      dtype=values.dtype)


def _eye_like(x, k=0, dtype=None):
    shape = ops.shape(x)
    offset = ops.arange(shape[1])[None, :] - ops.arange(shape[0])[:, None]  # column - row
    return ops.cast(ops.equal(offset, int(k)), dtype or x.dtype)


def _blocks(x, channels_last):
    """(tf, n, h, w, c) of a 4-D tensor: its dims as run-time scalars."""
    import tensorflow as tf

    dims = [tf.shape(x)[k] for k in range(4)]
    n, h, w, c = dims if channels_last else (dims[0], dims[2], dims[3], dims[1])
    return tf, n, h, w, c


def _depth_to_space(x, blocksize, mode="DCR", channels_last=True):
    """(N, C*b*b, H, W) -> (N, C, H*b, W*b) (or channels-last): input channel (i*b + j)*C + c
    (DCR) or c*b*b + i*b + j (CRD) goes to block offset (i, j) of channel c."""
    b = int(blocksize)
    tf, n, h, w, cc = _blocks(x, channels_last)
    c = cc // (b * b)
    if channels_last:
        split = [n, h, w, b, b, c] if mode == "DCR" else [n, h, w, c, b, b]
        order = [0, 1, 3, 2, 4, 5] if mode == "DCR" else [0, 1, 4, 2, 5, 3]
        out = [n, h * b, w * b, c]
    else:
        split = [n, b, b, c, h, w] if mode == "DCR" else [n, c, b, b, h, w]
        order = [0, 3, 4, 1, 5, 2] if mode == "DCR" else [0, 1, 4, 2, 5, 3]
        out = [n, c, h * b, w * b]
    return tf.reshape(tf.transpose(tf.reshape(x, tf.stack(split)), order), tf.stack(out))


def _space_to_depth(x, blocksize, mode="DCR", channels_last=True):
    """(N, C, H*b, W*b) -> (N, C*b*b, H, W) (or channels-last): block offset (i, j) of channel c
    goes to channel (i*b + j)*C + c (DCR) or c*b*b + i*b + j (CRD)."""
    b = int(blocksize)
    tf, n, hh, ww, c = _blocks(x, channels_last)
    h, w = hh // b, ww // b
    if channels_last:
        split = [n, h, b, w, b, c]
        order = [0, 1, 3, 2, 4, 5] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
        out = [n, h, w, c * b * b]
    else:
        split = [n, c, h, b, w, b]
        order = [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
        out = [n, c * b * b, h, w]
    return tf.reshape(tf.transpose(tf.reshape(x, tf.stack(split)), order), tf.stack(out))


def _shrink(x, bias=0.0, lambd=0.5):
    zero = ops.zeros_like(x)
    return ops.where(x < -lambd, x + ops.cast(bias, x.dtype),
                     ops.where(x > lambd, x - ops.cast(bias, x.dtype), zero))


def _celu(x, alpha=1.0):
    return ops.maximum(x, 0.0) + ops.minimum(0.0, alpha * (ops.exp(x / alpha) - 1.0))


def _pad(x, pads, value=None, axes=None, mode="constant"):
    """ONNX Pad (opset 18) in every mode; `pads` may be known only at run time
    (Swin pads its windows by sizes computed from the input); negative pads crop."""
    import tensorflow as tf

    rank = len(x.shape)
    axes = tf.range(rank) if axes is None else tf.math.floormod(tf.reshape(tf.cast(axes, "int32"), (-1,)), rank)
    pads = tf.cast(tf.reshape(tf.convert_to_tensor(pads), (2, -1)), "int32")
    full = tf.scatter_nd(axes[:, None], tf.transpose(pads), (rank, 2))  # (rank, [begin, end])
    crop = tf.minimum(full, 0)
    size = tf.shape(x) + tf.reduce_sum(crop, axis=1)
    x = tf.slice(x, -crop[:, 0], size)
    grow = tf.maximum(full, 0)
    if mode == "reflect":
        return tf.pad(x, grow, mode="REFLECT")
    if mode in ("edge", "wrap"):  # each axis read at clamped (edge) or wrapped indices
        for axis in range(rank):
            n = tf.shape(x)[axis]
            idx = tf.range(-grow[axis, 0], n + grow[axis, 1])
            idx = tf.clip_by_value(idx, 0, n - 1) if mode == "edge" else tf.math.floormod(idx, n)
            x = tf.gather(x, idx, axis=axis)
        return x
    fill = 0 if value is None else tf.cast(tf.reshape(value, ()), x.dtype)
    return tf.pad(x, grow, constant_values=fill)


_SCATTER = {"none": "tensor_scatter_nd_update", "add": "tensor_scatter_nd_add",
            "max": "tensor_scatter_nd_max", "min": "tensor_scatter_nd_min"}


def _scatter_nd(data, indices, updates, reduction="none"):
    """ONNX ScatterND: negative indices count from the end of their axis."""
    import tensorflow as tf

    indices = tf.cast(indices, "int64")
    dims = tf.cast(tf.shape(data, out_type="int64")[: indices.shape[-1]], "int64")
    indices = tf.where(indices < 0, indices + dims, indices)
    return getattr(tf, _SCATTER[reduction])(data, indices, tf.cast(updates, data.dtype))


def _scatter_elements(data, indices, updates, axis=0, reduction="none"):
    """ONNX ScatterElements: updates[i][j][k] goes to data[i][indices[i][j][k]][k] (axis 1), as
    one ScatterND over the full coordinates of every update."""
    import tensorflow as tf

    rank = len(indices.shape)
    axis %= rank
    indices = tf.cast(indices, "int64")
    indices = tf.where(indices < 0, indices + tf.shape(data, out_type="int64")[axis], indices)
    grid = tf.meshgrid(*[tf.range(tf.shape(indices, out_type="int64")[k]) for k in range(rank)], indexing="ij")
    grid[axis] = indices
    return _scatter_nd(data, tf.stack(grid, axis=-1), updates, reduction)


FUNCS = {
    "scatter_nd": _scatter_nd,
    "scatter_elements": _scatter_elements,
    "pad": _pad,
    "bitwise_and": _bitwise("bitwise_and"), "bitwise_or": _bitwise("bitwise_or"),
    "bitwise_xor": _bitwise("bitwise_xor"), "bitwise_not": _bitwise("invert"),
    "bit_shift": _bit_shift,
    "cumprod": _cumprod,
    "top_k": _top_k,
    "hardmax": _hardmax,
    "lp_norm": _lp_norm,
    "mvn": _mvn,
    "one_hot": _one_hot,
    "layer_norm": _layer_norm, "rms_norm": _rms_norm, "group_norm": _group_norm,
    "eye_like": _eye_like,
    "depth_to_space": _depth_to_space,
    "space_to_depth": _space_to_depth,
    "thresholded_relu": lambda x, alpha=1.0: ops.where(x > alpha, x, ops.zeros_like(x)),
    "shrink": _shrink,
    "celu": _celu,
    "swish": lambda x, alpha=1.0: x * ops.sigmoid(alpha * x),
}
