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


def add_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    """A new initializer named `name` (made unique) holding `array`."""
    while name in graph.initializers:
        name += "_"
    array = np.ascontiguousarray(array)
    v = ir.Value(name=name, shape=ir.Shape(array.shape),
                 type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                 const_value=ir.Tensor(array, name=name))
    graph.register_initializer(v)
    return v


def reuse_or_add(graph: ir.Graph, src: ir.Value, array: np.ndarray, reader: ir.Node, suffix: str) -> ir.Value:
    """`array` as an initializer: `src` rewritten in place (keeping the user's name) when
    `reader` is its only reader, else a new initializer `<src>_<suffix>`."""
    if src.is_initializer() and [n for n, _ in src.uses()] == [reader] and not src.is_graph_output():
        src.const_value = ir.Tensor(np.ascontiguousarray(array), name=src.name)
        src.shape = ir.Shape(array.shape)
        src.metadata_props.pop(LAYOUT, None)
        return src
    return add_initializer(graph, f"{src.name}_{suffix}", array)


UNARY_ELEMENTWISE = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign",
    "HardSigmoid", "HardSwish", "Gelu", "Mish", "Celu", "Abs", "Neg", "Exp", "Log", "Sqrt",
    "Identity", "Dropout",
}


def single_reader(v: ir.Value) -> ir.Node | None:
    """The one node reading `v`, when exactly one does and `v` is no graph output."""
    users = {n for n, _ in v.uses()}
    if len(users) != 1 or v.is_graph_output():
        return None
    return next(iter(users))


def dense_weight(node: ir.Node) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(W [K_out, K_in], bias [K_out] or None) of a plain fully connected Gemm, else None."""
    if node.op_type != "Gemm" or node.attributes.get_int("transA", 0) \
            or node.attributes.get_float("alpha", 1.0) != 1.0:
        return None
    b = const(node.inputs[1])
    if b is None or b.ndim != 2:
        return None
    w = b if node.attributes.get_int("transB", 0) else b.T
    bias = None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        bias = const(node.inputs[2])
        if bias is None or node.attributes.get_float("beta", 1.0) != 1.0 or bias.size != w.shape[0] \
                or bias.shape[-1] != w.shape[0]:
            return None
        bias = bias.reshape(-1)
    return w, bias


def flattened_dense(flat: ir.Node):
    """(fc, W, trans_b) when `flat` (a flatten of a static map) feeds only a fully connected
    layer with a constant 2-D weight; else None."""
    from .dense_to_conv import _is_flatten  # the one definition of "a flatten"

    x = flat.inputs[0]
    if not _is_flatten(flat) or x.shape is None or not all(isinstance(d, int) for d in x.shape[1:]):
        return None
    fc = single_reader(flat.outputs[0])
    if fc is None or fc.op_type not in ("Gemm", "MatMul") or fc.inputs[0] is not flat.outputs[0]:
        return None
    w = const(fc.inputs[1])
    if w is None or w.ndim != 2 or (fc.op_type == "Gemm" and fc.attributes.get_int("transA", 0)):
        return None
    return fc, w, bool(fc.op_type == "Gemm" and fc.attributes.get_int("transB", 0))


def reorder_dense_inputs(graph: ir.Graph, fc: ir.Node, w: np.ndarray, trans_b: bool,
                         shape, q, suffix: str) -> None:
    """The FC now reads flatten(x.transpose(q)) where it read flatten(x) (x: `shape`): permute W's
    input axis to match, as a transpose of its (shape)-shaped view: one copy (VGG-16's fc6, 411 MB:
    0.4 s, where gathering columns by an index array and copying again took 3.5 s)."""
    shape, q = [int(d) for d in shape], [int(a) for a in q]
    if trans_b:  # W is (out, in)
        new_w = w.reshape(w.shape[0], *shape).transpose(0, *(a + 1 for a in q)).reshape(w.shape[0], -1)
    else:  # W is (in, out)
        new_w = w.reshape(*shape, w.shape[1]).transpose(*q, len(shape)).reshape(-1, w.shape[1])
    fc.replace_input_with(1, reuse_or_add(graph, fc.inputs[1], new_w, fc, suffix))
