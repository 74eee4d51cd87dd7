"""passes/_dim_origin.dim_origin follows a size back through broadcasting ops whose operands both
carry it (residual blocks): each (value, axis) is answered once per question, so a deep residual
stack costs a walk per layer, not one per path (2**layers). A full-size ViT-B once spent minutes here."""

from __future__ import annotations

import onnx_ir as ir
from irbridge.passes import _dim_origin
from onnx import TensorProto, helper

from tests.conftest import make_model

LAYERS = 10


def _residual_stack():
    """x[batch, seq, 8] -> LAYERS x (h = Add(Mul(h, h), h)) -> y."""
    nodes, h = [], "x"
    for k in range(LAYERS):
        nodes += [helper.make_node("Mul", [h, h], [f"m{k}"]), helper.make_node("Add", [f"m{k}", h], [f"h{k}"])]
        h = f"h{k}"
    nodes.append(helper.make_node("Relu", [h], ["y"]))
    proto = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])])
    model = ir.serde.deserialize_model(proto)
    for v in (v for n in model.graph for v in n.outputs):
        v.shape = ir.Shape(["batch", "seq", 8])  # as shape inference records them
    return model


def test_dim_origin_walks_each_value_once(monkeypatch):
    model = _residual_stack()
    x, y = model.graph.inputs[0], model.graph.outputs[0]
    walks = []
    walk = _dim_origin._origin_walk
    monkeypatch.setattr(_dim_origin, "_origin_walk", lambda *a: walks.append(1) or walk(*a))
    origin = _dim_origin.dim_origin(y, 1)
    assert origin[0] is x and origin[1] == 1
    assert len(walks) <= 5 * LAYERS, len(walks)  # 4 per layer; 2**LAYERS without the memo
