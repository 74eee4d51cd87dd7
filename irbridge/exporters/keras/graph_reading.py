"""Reading the ONNX graph before the Keras build: which nodes one layer does the work of, and
which shape arithmetic the Keras layers make unnecessary."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir


def find_dense_nd(b, graph) -> None:
    """Find Dense layers over the last axis of an N-D tensor, as tf2onnx writes them (Tensordot):

        x [batch, time, 16] -> Reshape([-1, 16]) -> MatMul(W [16, 8]) -> Reshape(live shape) [batch, time, 8]

    One Keras Dense(8) on x does all of it, with any free dims (the live shape is not needed)."""
    for m in graph:
        if m.op_type != "MatMul" or m.domain or m.inputs[1] is None or m.inputs[1].const_value is None:
            continue
        w = m.inputs[1].const_value
        first, uses = m.inputs[0].producer(), list(m.outputs[0].uses())
        if first is None or first.op_type != "Reshape" or len(uses) != 1 or len(w.shape) != 2:
            continue
        last = uses[0][0]
        x, y = first.inputs[0], last.outputs[0]
        if last.op_type != "Reshape" or uses[0][1] != 0 or len(list(first.outputs[0].uses())) != 1 \
                or first.outputs[0].is_graph_output() or m.outputs[0].is_graph_output():
            continue
        if x.shape is None or y.shape is None or len(x.shape) < 3 or len(y.shape) != len(x.shape):
            continue
        if x.shape[-1] != w.shape[0] or y.shape[-1] != w.shape[1] or \
                not all(same_dim(a, c) for a, c in zip(x.shape[:-1], y.shape[:-1])):
            continue
        b.dense_nd[m] = (x, last)
        b.dropped.add(first)
        b.absorbed[last] = y


def shape_only(graph, replaced=frozenset()) -> set:
    """Nodes whose results only a Reshape's target shape reads, where the Reshape keeps its
    input's batch and knows every other output size: the Keras Reshape layer takes those sizes
    (`target_shape`, batch excluded), so the arithmetic on the live batch is not needed; or
    where a converter does the Reshape's work itself (`replaced`).

        Shape(x) -> Gather -> Slice[0:1] -> Concat(_, [400]) -> Reshape(x, _)   =>   Reshape((400,))
    """
    def static_beyond_batch(reshape: ir.Node) -> bool:
        out = reshape.outputs[0].shape
        return keeps_batch(reshape) and all(isinstance(d, int) for d in out[1:])

    skip: set = set()
    for node in reversed(list(graph)):
        uses = [u for out in node.outputs for u in out.uses()]
        if not uses or any(out.is_graph_output() for out in node.outputs):
            continue
        if all(reader in skip or (reader.op_type == "Reshape" and i == 1 and (reader in replaced or
                                                                             static_beyond_batch(reader)))
               for reader, i in uses):
            skip.add(node)
    return skip


def keeps_batch(reshape: ir.Node) -> bool:
    """Whether a Reshape's output has its input's batch (axis 0): the same dim, or the same
    number of elements per batch entry when both are known beyond the batch."""
    src = reshape.inputs[0].shape if reshape.inputs[0] is not None else None
    out = reshape.outputs[0].shape
    if src is None or out is None or not len(src) or not len(out):
        return False
    if same_dim(src[0], out[0]):
        return True
    rest = list(src[1:]) + list(out[1:])
    return all(isinstance(d, int) for d in rest) and int(np.prod(src[1:])) == int(np.prod(out[1:]))


def same_dim(a, b) -> bool:
    """The same size: equal ints, or the same named symbolic dim."""
    if isinstance(a, int) or isinstance(b, int):
        return a == b
    return a.value is not None and a.value == b.value
