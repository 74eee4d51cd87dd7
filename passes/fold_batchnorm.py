"""fold-batchnorm: fold an inference BatchNormalization into the Conv or Gemm before it."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from . import register
from ._weights import add_initializer, const


@register("fold-batchnorm")
class FoldBatchNorm(ir.passes.InPlacePass):
    """Fold BatchNormalization into the preceding Conv/Gemm (inference only; optional).

    With s = gamma / sqrt(var + eps), per output channel c:

        before:  x -> Conv(W, b) -> BatchNormalization(gamma, beta, mean, var) -> y
        after:   x -> Conv(W * s[c], (b - mean) * s + beta) -> y

    Applies only where the Conv/Gemm output feeds nothing but the BatchNormalization and all
    weights are constants. Not in the default pipeline: a user who wants to fine-tune the
    exported model keeps the BatchNorm layers.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for bn in list(model.graph):
            if bn.op_type == "BatchNormalization" and bn.domain == "":
                modified |= _fold(model.graph, bn)
        return ir.passes.PassResult(model, modified)


def _fold(graph: ir.Graph, bn: ir.Node) -> bool:
    if bn.attributes.get_int("training_mode", 0) or any(o.uses() for o in bn.outputs[1:]):
        return False
    prod = bn.inputs[0].producer()
    if prod is None or prod.op_type not in ("Conv", "Gemm") or len(bn.inputs[0].uses()) != 1 \
            or bn.inputs[0].is_graph_output():
        return False
    params = [const(bn.inputs[i]) for i in range(1, 5)]
    w = const(prod.inputs[1])
    if w is None or any(p is None for p in params):
        return False
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + bn.attributes.get_float("epsilon", 1e-5))
    has_bias = len(prod.inputs) > 2 and prod.inputs[2] is not None
    b = const(prod.inputs[2]) if has_bias else np.zeros(len(scale))
    if b is None:
        return False
    if prod.op_type == "Conv":
        w2 = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    else:  # Gemm: only the plain A @ B' + C form, BatchNorm over its N outputs
        if prod.attributes.get_int("transA", 0) or prod.attributes.get_float("alpha", 1.0) != 1.0 \
                or prod.attributes.get_float("beta", 1.0) != 1.0 or b.size != scale.size:
            return False
        w2 = w * (scale[:, None] if prod.attributes.get_int("transB", 0) else scale[None, :])
    b2 = (b.reshape(-1) - mean) * scale + beta
    w_val = add_initializer(graph, prod.inputs[1].name + "_bnfold", w2.astype(w.dtype))
    b_val = add_initializer(graph, (prod.outputs[0].name or prod.name) + "_bias_bnfold", b2.astype(w.dtype))
    new = ir.Node("", prod.op_type, [prod.inputs[0], w_val, b_val], prod.attributes.values(),
                  name=prod.name, metadata_props=dict(prod.metadata_props))
    ir.convenience.replace_nodes_and_values(graph, bn, [prod, bn], [new], [bn.outputs[0]], [new.outputs[0]])
    return True
