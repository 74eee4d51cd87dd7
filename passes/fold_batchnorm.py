"""fold-batchnorm: fold inference BatchNormalization (and per-channel Mul/Add, Caffe's Scale)
into the Conv or Gemm before it."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from . import register
from ._weights import add_initializer, const, single_reader


@register("fold-batchnorm")
class FoldBatchNorm(ir.passes.InPlacePass):
    """Fold BatchNormalization and per-channel Mul/Add into the preceding Conv/Gemm (optional).

    Each follower is an affine map per output channel, y = s * x + t, folded as
    W' = W * s, b' = b * s + t:

        BatchNormalization:  s = gamma / sqrt(var + eps),  t = beta - mean * s
        Mul by c[C,1,1]:     s = c,  t = 0        (Caffe's Scale layer, as imported)
        Add of c[C,1,1]:     s = 1,  t = c        (Caffe's Scale bias, or Bias)

        before:  x -> Conv(W, b) -> BatchNormalization -> Mul(scale) -> Add(shift) -> y
        after:   x -> Conv(W', b') -> y

    Applies only where the Conv/Gemm output feeds nothing but the follower and all weights are
    constants. Not in the default pipeline: a user who wants to fine-tune the exported model
    keeps the BatchNorm layers.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        changed = True
        while changed:  # Conv -> BatchNorm -> Mul -> Add folds one follower at a time
            changed = False
            for node in list(model.graph):
                if node.graph is not None and node.op_type in ("BatchNormalization", "Mul", "Add") \
                        and node.domain == "":
                    changed |= _fold(model.graph, node)
            modified |= changed
        return ir.passes.PassResult(model, modified)


def _fold(graph: ir.Graph, follower: ir.Node) -> bool:
    prod, x = _producer(follower)
    if prod is None:
        return False
    w = const(prod.inputs[1])
    if w is None or (prod.op_type == "Gemm" and not _plain_gemm(prod)):
        return False
    channels = w.shape[0] if prod.op_type == "Conv" or prod.attributes.get_int("transB", 0) else w.shape[1]
    affine = _affine(follower, x, channels, w.ndim if prod.op_type == "Conv" else 2)
    if affine is None:
        return False
    scale, shift = affine
    has_bias = len(prod.inputs) > 2 and prod.inputs[2] is not None
    b = const(prod.inputs[2]) if has_bias else np.zeros(channels)
    if b is None or b.size != channels:
        return False
    if prod.op_type == "Conv":
        w2 = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    else:
        w2 = w * (scale[:, None] if prod.attributes.get_int("transB", 0) else scale[None, :])
    b2 = b.reshape(-1) * scale + shift
    w_val = add_initializer(graph, prod.inputs[1].name + "_folded", w2.astype(w.dtype))
    b_val = add_initializer(graph, (prod.outputs[0].name or prod.name) + "_bias_folded", b2.astype(w.dtype))
    new = ir.Node("", prod.op_type, [prod.inputs[0], w_val, b_val], prod.attributes.values(),
                  name=prod.name, metadata_props=dict(prod.metadata_props))
    ir.convenience.replace_nodes_and_values(graph, follower, [prod, follower], [new],
                                            [follower.outputs[0]], [new.outputs[0]])
    return True


def _producer(follower: ir.Node) -> tuple[ir.Node | None, ir.Value | None]:
    """The Conv/Gemm whose output only the follower reads, and that output."""
    for x in follower.inputs[: 1 if follower.op_type == "BatchNormalization" else 2]:
        prod = x.producer() if x is not None else None
        if prod is not None and prod.op_type in ("Conv", "Gemm") and prod.domain == "" \
                and single_reader(x) is follower:
            return prod, x
    return None, None


def _plain_gemm(gemm: ir.Node) -> bool:
    a = gemm.attributes
    return not a.get_int("transA", 0) and a.get_float("alpha", 1.0) == 1.0 and a.get_float("beta", 1.0) == 1.0


def _affine(follower: ir.Node, x: ir.Value, channels: int, rank: int):
    """(s, t) per output channel, in float64, or None if the follower is not per-channel."""
    if follower.op_type == "BatchNormalization":
        if follower.attributes.get_int("training_mode", 0) or any(o.uses() for o in follower.outputs[1:]):
            return None
        params = [const(follower.inputs[i]) for i in range(1, 5)]
        if any(p is None for p in params):
            return None
        gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
        s = gamma / np.sqrt(var + follower.attributes.get_float("epsilon", 1e-5))
        return s, beta - mean * s
    other = follower.inputs[1] if follower.inputs[0] is x else follower.inputs[0]
    c = _per_channel(const(other), channels, rank)
    if c is None:
        return None
    if follower.op_type == "Mul":
        return c, np.zeros(channels)
    return np.ones(channels), c


def _per_channel(c: np.ndarray | None, channels: int, rank: int) -> np.ndarray | None:
    """c as a vector over axis 1 of a rank-`rank` tensor, if that is how it broadcasts."""
    if c is None or c.dtype.kind != "f" or c.ndim > rank:
        return None
    full = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if any(d != 1 for i, d in enumerate(full.shape) if i != 1) or full.shape[1] not in (1, channels):
        return None
    return np.broadcast_to(full.reshape(-1).astype(np.float64), (channels,))
