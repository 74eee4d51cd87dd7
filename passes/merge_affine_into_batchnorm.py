"""merge-affine-into-batchnorm: fold per-channel Mul/Add after a BatchNormalization into it."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from . import register
from ._weights import const, reuse_or_add, single_reader
from .fold_batchnorm import _per_channel


@register("merge-affine-into-batchnorm")
class MergeAffineIntoBatchNorm(ir.passes.InPlacePass):
    """Fold a per-channel Mul/Add that follows a BatchNormalization into its scale and bias.

    Caffe2 and Caffe graphs often split a BatchNorm into normalize + scale + shift; a Keras or
    PyTorch user writes one BatchNormalization layer, and keeps it trainable:

        before:  x -> BatchNormalization(gamma, beta, mean, var) -> Mul(s[C,1,1]) -> Add(t[C,1,1])
        after:   x -> BatchNormalization(gamma * s, beta * s + t, mean, var)

    Unlike fold-batchnorm, the BatchNormalization layer stays.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        changed = True
        while changed:
            changed = False
            for node in list(model.graph):
                if node.graph is not None and node.op_type in ("Mul", "Add") and node.domain == "":
                    changed |= _merge(model.graph, node)
            modified |= changed
        return ir.passes.PassResult(model, modified)


def _merge(graph: ir.Graph, op: ir.Node) -> bool:
    for k, x in enumerate(op.inputs):
        bn = x.producer() if x is not None else None
        if bn is None or bn.op_type != "BatchNormalization" or single_reader(x) is not op \
                or any(o.uses() or o.is_graph_output() for o in bn.outputs[1:]):
            continue
        gamma, beta = const(bn.inputs[1]), const(bn.inputs[2])
        rank = len(x.shape) if x.shape is not None else None
        c = _per_channel(const(op.inputs[1 - k]), gamma.size if gamma is not None else 0, rank or 0)
        if gamma is None or beta is None or c is None:
            return False
        if op.op_type == "Mul":
            gamma, beta = gamma * c, beta * c
        else:
            beta = beta + c
        inputs = list(bn.inputs)
        inputs[1] = reuse_or_add(graph, bn.inputs[1], gamma.astype(np.float32), bn, "merged")
        inputs[2] = reuse_or_add(graph, bn.inputs[2], beta.astype(np.float32), bn, "merged")
        new = ir.Node("", "BatchNormalization", inputs, list(bn.attributes.values()), name=bn.name,
                      metadata_props=dict(bn.metadata_props))
        # the merged layer's output keeps the name of the value it now computes (the Add's)
        ir.convenience.replace_nodes_and_values(graph, op, [bn, op], [new], [op.outputs[0]], [new.outputs[0]])
        return True
    return False
