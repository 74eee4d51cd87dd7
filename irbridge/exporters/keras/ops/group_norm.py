"""GroupNormalization, InstanceNormalization and PyTorch's decomposed nn.GroupNorm ->
keras.layers.GroupNormalization over the channel axis as the data is held (imported by norm.py,
whose family this is)."""

from __future__ import annotations

import keras
import numpy as np

from ....passes._shape_read import is_whole_shape
from ..builder import Held, fuser
from ..registry import Unsupported, converter
from .norm import _only_reader, _other
from .tensor import ident, op


def group_norm(ctx, x, groups, epsilon, gamma, beta):
    """keras.layers.GroupNormalization(groups) of value `x` (N, C, ...) over its channel axis as
    `x` is held (channels-last (N, T, C) after a Conv1D, or ONNX order), with per-channel
    gamma/beta: InstanceNormalization is groups == C."""
    rank = len(x.shape) if x.shape is not None else None
    channels = x.shape[1] if rank else None
    if rank is None or rank < 3 or not isinstance(channels, int):
        raise Unsupported("a group/instance norm of a tensor whose rank or channel count is not known")
    if channels % groups:
        raise Unsupported(f"{groups} groups do not divide {channels} channels")
    perm = ctx.b.env[x.name][1] if x.name in ctx.b.env else ident(rank)
    if perm[0] != 0:
        perm = ident(rank)
    weights = [np.asarray(gamma, np.float32).reshape(channels), np.asarray(beta, np.float32).reshape(channels)]
    y = ctx.layer(keras.layers.GroupNormalization, ctx.b.tensor(x, tuple(perm)), weights=weights,
                  groups=int(groups), axis=list(perm).index(1), epsilon=float(epsilon))
    return Held(y, perm)


@converter("InstanceNormalization", since=6)
def instance_norm(ctx):
    scale, bias = ctx.const(1), ctx.const(2)
    x = ctx.node.inputs[0]
    if scale is None or bias is None:  # no layer holds run-time weights: keras.ops
        return op(ctx, "group_norm", {"num_groups": 0, "epsilon": ctx.attr("epsilon", 1e-5)})
    channels = x.shape[1] if x.shape is not None and len(x.shape) > 1 else None
    groups = channels if isinstance(channels, int) else 1  # (group_norm refuses an unknown C)
    return group_norm(ctx, x, groups, ctx.attr("epsilon", 1e-5), scale, bias)


def _group_norm_op(per_channel):
    def convert(ctx):
        scale, bias = ctx.const(1), ctx.const(2)
        x, groups = ctx.node.inputs[0], int(ctx.attr("num_groups"))
        if scale is None or bias is None:  # no layer holds run-time weights: keras.ops
            return op(ctx, "group_norm", {"num_groups": groups, "epsilon": ctx.attr("epsilon", 1e-5),
                                          "per_channel": per_channel})
        channels = x.shape[1] if x.shape is not None and len(x.shape) > 2 else None
        if not per_channel and isinstance(channels, int) and channels % groups == 0:  # opset 18: per group
            scale, bias = np.repeat(scale, channels // groups), np.repeat(bias, channels // groups)
        return group_norm(ctx, x, groups, ctx.attr("epsilon", 1e-5), scale, bias)

    return convert


converter("GroupNormalization", since=18)(_group_norm_op(per_channel=False))
converter("GroupNormalization", since=21)(_group_norm_op(per_channel=True))


def _channel_const(n, v, channels, rank):
    """The constant operand of Mul/Add `n` (other than `v`) as C per-channel values, when it
    broadcasts against an (N, C, ...) tensor of `rank` along the channel axis only."""
    _, c = _other(n, v)
    if c is None or c.size != channels or c.ndim > rank:
        return None
    shape = (1,) * (rank - c.ndim) + c.shape
    return c.reshape(-1) if shape[1] == channels else None  # (size C: every other axis is 1)


@fuser
def find_group_norms(b, graph) -> None:
    """PyTorch's nn.GroupNorm(G, C) as its TorchScript export writes it, one GroupNormalization:

        x (N, C, T) -> Reshape([0, G, -1]) -> InstanceNormalization(ones, zeros) -> Reshape(Shape(x))
          -> Mul(gamma [C, 1]) -> Add(beta [C, 1])      =>      GroupNormalization(groups=G)(x)
    """
    for norm in list(graph):
        if norm.op_type != "InstanceNormalization" or norm.domain or norm in b.dropped:
            continue
        first = norm.inputs[0].producer()
        if first is None or first.op_type != "Reshape" or _only_reader(first.outputs[0], ("InstanceNormalization",)) \
                is not norm or first.inputs[1] is None or first.inputs[1].const_value is None:
            continue
        x, target = first.inputs[0], first.inputs[1].const_value.numpy().reshape(-1).tolist()
        if x.shape is None or len(x.shape) < 3 or not isinstance(x.shape[1], int) or len(target) != 3 \
                or target[0] != 0 or target[2] != -1 or target[1] <= 0 or x.shape[1] % target[1]:
            continue
        rank, channels, groups = len(x.shape), x.shape[1], int(target[1])
        scale = norm.inputs[1].const_value if norm.inputs[1] is not None else None
        bias = norm.inputs[2].const_value if len(norm.inputs) > 2 and norm.inputs[2] is not None else None
        back = _only_reader(norm.outputs[0], ("Reshape",))
        if scale is None or bias is None or back is None or back.inputs[0] is not norm.outputs[0]:
            continue
        shape_src = back.inputs[1].producer() if back.inputs[1] is not None else None
        same = is_whole_shape(shape_src, x)
        if not same:
            c = back.inputs[1].const_value if back.inputs[1] is not None else None
            same = c is not None and all(isinstance(d, int) for d in x.shape) and \
                c.numpy().reshape(-1).tolist() == list(x.shape)
        if not same:
            continue
        per = channels // groups
        gamma = np.repeat(scale.numpy().reshape(-1), per)
        beta = np.repeat(bias.numpy().reshape(-1), per)
        chain, end = [first, norm, back], back.outputs[0]
        for op_type in ("Mul", "Add"):
            n = _only_reader(end, (op_type,))
            c = _channel_const(n, end, channels, rank) if n is not None else None
            if c is None:
                continue
            if op_type == "Mul":
                gamma, beta = gamma * c, beta * c
            else:
                beta = beta + c
            chain.append(n)
            end = n.outputs[0]
        b.dropped.update(chain[:-1])
        eps = norm.attributes.get_float("epsilon", 1e-5)

        def convert(ctx, x=x, groups=groups, eps=eps, gamma=gamma, beta=beta):
            return group_norm(ctx, x, groups, eps, gamma, beta)

        b.fusions[chain[-1]] = convert
