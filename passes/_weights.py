"""Helpers for passes that rewrite weights: constants, initializers, weight slots, layout marks."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import LAYOUT

# (op_type, input index) of the inputs ONNX defines as weights.
WEIGHT_SLOTS = {("Conv", 1), ("ConvTranspose", 1), ("Gemm", 1), ("MatMul", 1)}

# Ops that only rearrange a constant on its way to a weight slot.
LAYOUT_OPS = ("Transpose", "Reshape", "Slice", "Identity")

FLIP = "+flip"  # suffix of a layout mark: the kernel is spatially flipped (Theano)


def const(v: ir.Value | None) -> np.ndarray | None:
    """The value's array if it is a constant (an initializer that is not a graph input)."""
    if v is None or v.const_value is None or v.is_graph_input():
        return None
    return v.const_value.numpy()


def feeds_weight(v: ir.Value) -> bool:
    """Does `v` reach a weight slot, directly or through layout ops only?"""
    for node, index in v.uses():
        if (node.op_type, index) in WEIGHT_SLOTS and node.domain == "":
            return True
        if node.op_type in LAYOUT_OPS and index == 0 and any(feeds_weight(o) for o in node.outputs):
            return True
    return False


def canonical_layout(v: ir.Value, ndim: int) -> str | None:
    """The layout letters ONNX defines for `v` where it is consumed as a weight."""
    spatial = "DHW"[3 - (ndim - 2):] if ndim >= 3 else ""
    for node, index in v.uses():
        if (node.op_type, index) not in WEIGHT_SLOTS:
            continue
        if node.op_type == "Conv":
            return "OI" + spatial
        if node.op_type == "ConvTranspose":
            return "IO" + spatial
        if node.op_type == "Gemm":
            return "OI" if node.attributes.get_int("transB", 0) else "IO"
        return "IO"
    return None


def replace_with_constant(graph: ir.Graph, node: ir.Node, array: np.ndarray, layout: str | None) -> None:
    """Replace `node` (whose only data input is an initializer) by one initializer holding
    `array`. The initializer keeps its name when nothing else reads it."""
    src = node.inputs[0]
    out = node.outputs[0]
    tensor = ir.Tensor(np.ascontiguousarray(array), name=src.name)
    if len(src.uses()) == 1 and not src.is_graph_output():
        src.const_value = tensor  # rewrite the user's initializer in place: its name stays
        src.shape = ir.Shape(array.shape)
        new = src
    else:
        name = f"{src.name}_{node.op_type.lower()}"
        while name in graph.initializers:
            name += "_"
        tensor.name = name
        new = ir.Value(name=name, shape=ir.Shape(array.shape), type=ir.TensorType(src.dtype),
                       const_value=tensor)
        graph.register_initializer(new)
    canonical = canonical_layout(out, array.ndim)
    if layout and layout != canonical:
        new.metadata_props[LAYOUT] = layout
    else:
        new.metadata_props.pop(LAYOUT, None)
    out.replace_all_uses_with(new)
    graph.remove(node, safe=True)
