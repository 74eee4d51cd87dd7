"""recover-batchnorm: TF's composed batch normalization back into one BatchNormalization."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes import common

from irbridge.provenance import copy_provenance

from . import register
from ._weights import add_initializer, const


@register("recover-batchnorm")
class RecoverBatchNorm(ir.passes.InPlacePass):
    """Give a Keras BatchNormalization layer back its BatchNormalization node.

    Keras (TF backend) computes the layer with tf.nn.batch_normalization, which tf2onnx converts
    op by op, channels-last; the statistics arrive as (reshaped) initializers:

        before:  inv = Reciprocal(Sqrt(var + eps)) * gamma
                 y = x * inv + (beta - mean * inv)
        after:   y = Transpose(BatchNormalization(Transpose(x, C to axis 1), gamma, beta, mean, var,
                               epsilon=eps), back)

    A port then holds a BatchNormalization layer with the same moving mean and variance, not a
    Mul and an Add; cancel-transposes removes the Transposes between channels-first ops. Runs
    before fold-constants, which would merge the statistics into two vectors. A layer without
    `scale` (no gamma) or `center` (beta: y = x * inv - mean * inv) is recovered too.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        if not any(n.op_type == "Reciprocal" for n in model.graph):  # no 1/sqrt(var + eps): nothing to do
            return ir.passes.PassResult(model, False)
        common.ShapeInferencePass()(model)  # the statistics' shapes tell the channel axis
        modified = False
        for node in list(model.graph):
            if node.graph is not None and node.op_type == "Add" and node.domain == "":
                modified |= _recover(model.graph, node)
        return ir.passes.PassResult(model, modified)


def _recover(graph: ir.Graph, add: ir.Node) -> bool:
    match = _match(add)
    if match is None:
        return False
    x, stats, eps, axis = match
    rank = len(x.shape) if x.shape is not None else None
    if rank is None or not 1 <= axis < rank:
        return False
    inputs = [x]
    nodes = []
    perm = [0, axis] + [d for d in range(1, rank) if d != axis]
    if axis != 1:
        nodes.append(ir.node("Transpose", [x], {"perm": perm}, name=f"{add.name}_to_channels_first"))
        inputs = [nodes[-1].outputs[0]]
    for role in ("scale", "bias", "mean", "var"):
        inputs.append(stats[role])
    nodes.append(ir.node("BatchNormalization", inputs, {"epsilon": float(eps)}, name=f"{add.name}_batchnorm"))
    if axis != 1:
        nodes.append(ir.node("Transpose", [nodes[-1].outputs[0]], {"perm": [int(p) for p in np.argsort(perm)]},
                             name=f"{add.name}_to_channels_last"))
    for n in nodes:
        copy_provenance(add, n)
    ir.convenience.replace_nodes_and_values(graph, add, [add], nodes, [add.outputs[0]], [nodes[-1].outputs[0]])
    return True


def _match(add: ir.Node):
    """(x, {scale, bias, mean, var}: 1-D values, eps, channel axis of x) or None."""
    for k in (0, 1):
        scaled, shift = add.inputs[k], add.inputs[1 - k]
        mul = _producer(scaled, "Mul")
        if mul is None:
            continue
        for j in (0, 1):
            x, inv = mul.inputs[j], mul.inputs[1 - j]
            parts = _inverse_std(inv)
            if parts is None:
                continue
            var, eps, gamma = parts
            centered = _shift(shift, inv)
            if centered is None:
                continue
            mean, beta = centered
            leaves = [leaf for leaf in (var, gamma, mean, beta) if leaf is not None]
            channels = {leaf[1].size for leaf in leaves}
            if len(channels) != 1 or x.shape is None:
                continue
            axis = _channel_axis(var[2], len(x.shape))
            if axis is None:
                continue
            c = channels.pop()
            graph = add.graph
            stats = {"var": _vector(graph, var, add, "var"), "mean": _vector(graph, mean, add, "mean"),
                     "scale": _vector(graph, gamma, add, "scale") if gamma else
                     add_initializer(graph, f"{add.name}_scale", np.ones(c, var[1].dtype)),
                     "bias": _vector(graph, beta, add, "bias") if beta else
                     add_initializer(graph, f"{add.name}_bias", np.zeros(c, var[1].dtype))}
            return x, stats, eps, axis
    return None


def _inverse_std(inv: ir.Value):
    """inv = Reciprocal(Sqrt(var + eps)) [* gamma] -> (var leaf, eps, gamma leaf or None)."""
    node = inv.producer()
    gamma = None
    if node is not None and node.op_type == "Mul" and node.domain == "":
        for k in (0, 1):
            r, g = _producer(node.inputs[k], "Reciprocal"), _leaf(node.inputs[1 - k])
            if r is not None and g is not None:
                node, gamma = r, g
                break
        else:
            return None
    if node is None or node.op_type != "Reciprocal":
        return None
    sqrt = _producer(node.inputs[0], "Sqrt")
    plus = _producer(sqrt.inputs[0], "Add") if sqrt is not None else None
    if plus is None:
        return None
    for k in (0, 1):
        var, eps = _leaf(plus.inputs[k]), const(plus.inputs[1 - k])
        if var is not None and eps is not None and eps.size == 1:
            return var, float(eps.reshape(())), gamma
    return None


def _shift(shift: ir.Value, inv: ir.Value):
    """shift = beta - mean * inv, -(mean * inv) or (-mean) * inv -> (mean leaf, beta leaf or None)."""
    node = shift.producer()
    if node is None or node.domain != "":
        return None
    beta = None
    if node.op_type == "Sub":
        beta, node = _leaf(node.inputs[0]), _producer(node.inputs[1], "Mul")
        if beta is None:
            return None
    elif node.op_type == "Neg":
        node = _producer(node.inputs[0], "Mul")
    elif node.op_type == "Mul":  # (-mean) * inv
        for k in (0, 1):
            neg = _producer(node.inputs[k], "Neg")
            if node.inputs[1 - k] is inv and neg is not None:
                mean = _leaf(neg.inputs[0])
                return None if mean is None else (mean, None)
        return None
    else:
        return None
    if node is None:
        return None
    for k in (0, 1):
        if node.inputs[1 - k] is inv:
            mean = _leaf(node.inputs[k])
            if mean is not None:
                return mean, beta
    return None


def _leaf(v: ir.Value | None):
    """A constant statistic, directly or through a Reshape/Unsqueeze/Identity:
    (the initializer value, its values, the shape it broadcasts with)."""
    if v is None:
        return None
    c = const(v)
    if c is not None:
        return (v, c.reshape(-1), c.shape) if c.dtype.kind == "f" else None
    node = v.producer()
    if node is None or node.domain != "" or node.op_type not in ("Reshape", "Unsqueeze", "Identity"):
        return None
    base = const(node.inputs[0])
    if base is None or base.dtype.kind != "f" or v.shape is None or not all(isinstance(d, int) for d in v.shape):
        return None
    return node.inputs[0], base.reshape(-1), tuple(v.shape)


def _channel_axis(shape: tuple, rank: int) -> int | None:
    """The axis of a rank-`rank` tensor along which a constant of `shape` varies."""
    full = (1,) * (rank - len(shape)) + tuple(shape)
    varying = [i for i, d in enumerate(full) if d != 1]
    return varying[0] if len(varying) == 1 else None


def _vector(graph: ir.Graph, leaf, anchor: ir.Node, role: str) -> ir.Value:
    value, values, _ = leaf
    if value.shape is not None and len(value.shape) == 1 and value.is_initializer():
        return value  # the layer's own weight (`conv1_bn.moving_mean`), shared as it is
    return add_initializer(graph, f"{anchor.name}_{role}", values)


def _producer(v: ir.Value | None, op_type: str) -> ir.Node | None:
    node = v.producer() if v is not None else None
    return node if node is not None and node.op_type == op_type and node.domain == "" else None
