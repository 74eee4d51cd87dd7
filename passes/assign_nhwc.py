"""assign-nhwc: the layout assignment channels-last targets (Keras, TF) are exported on."""

from __future__ import annotations

import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._shape_read import is_whole_shape
from ._weights import const, flattened_dense, reorder_dense_inputs
from .cancel_transposes import BINARY_ELEMENTWISE, REDUCE, UNARY

PHYSICAL = "irbridge.physical"  # value metadata: how a channels-last target holds the value

# ONNX ops whose channel axis is 1: a channels-last target runs them on NHWC data.
CHANNELS_FIRST = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                  "GlobalMaxPool", "BatchNormalization", "LRN", "InstanceNormalization", "LpPool"}
# Ops that work in any layout (their axes, pads or constants renumbered by the exporter).
LAYOUT_FREE = UNARY | BINARY_ELEMENTWISE | REDUCE | {"Concat", "Softmax", "LogSoftmax", "Pad",
                                                       "Split", "Where", "Identity"}
# Ops that resize some axes of their input 0 and work in any layout: their output is held as
# their input is. An image resize (N and C kept) counts as channels-first for graph inputs.
RESIZE = {"Resize", "Upsample"}
# Ops that cut some axes of their input 0, named by constant `axes` (input 3, absent: the
# leading axes): held as their input is, the exporter slicing the held axes.
SLICE = {"Slice"}


def channels_last(rank: int) -> tuple[int, ...]:
    """The permutation that takes NC... to N...C."""
    return (0, *range(2, rank), 1)


def physical_perm(v: ir.Value) -> tuple[int, ...] | None:
    """How the target holds `v`: its data is v.transpose(perm); None means as ONNX says."""
    text = v.metadata_props.get(PHYSICAL)
    return tuple(int(p) for p in text.split(",")) if text else None


@register("assign-nhwc")
class AssignNHWC(ir.passes.InPlacePass):
    """Assign channels-last storage to every activation a channels-first op touches.

    The ONNX graph keeps its meaning (onnxruntime runs it with the same outputs); each value
    gets `irbridge.physical` = the permutation in which an NHWC target (Keras, TF) holds it.
    Layout-free ops keep their input's layout, a Transpose changes only the logical view (it
    costs nothing), and ops that need the ONNX order (Reshape, Flatten, Gemm) get it:

        before:  x[N,3,H,W] -> Conv -> Relu -> MaxPool -> Flatten -> Gemm(W)
        after:   x (NHWC) -> Conv (NHWC) -> Relu (NHWC) -> MaxPool (NHWC)
                   -> Transpose(0,2,3,1) (free) -> Flatten -> Gemm(W rows permuted)

    The Transpose before a Flatten that feeds a fully connected layer is paid for by permuting
    the layer's weight rows, so the flatten happens in the target's own (HWC) order. With
    `keep_nchw_io`, graph inputs and outputs stay in the ONNX order (one permute each).
    """

    def __init__(self, keep_nchw_io: bool = False):
        super().__init__()
        self.keep_nchw_io = keep_nchw_io

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        for v in graph.inputs:
            rank = len(v.shape) if v.shape is not None else 0
            if rank >= 3 and not self.keep_nchw_io and v.name not in graph.initializers \
                    and not _already_channels_last(v, rank) and _reaches_channels_first(v):
                _set(v, channels_last(rank))
        for node in list(graph):
            if node.op_type in ("Flatten", "Reshape") and _flatten_into_dense(graph, node):
                continue
            for out, perm in zip(node.outputs, _output_perms(node)):
                _set(out, perm)
        return ir.passes.PassResult(model, True)


def _reaches_channels_first(v: ir.Value, depth: int = 0) -> bool:
    """Whether an image tensor pays for being held channels-last: a channels-first op (or an
    image resize) reads it, directly or through layout-free ops of the same rank. Sequence
    tensors ([batch, time, features] into MatMul, LayerNormalization, ...) keep their order."""
    rank = _rank(v)
    if depth > 20 or not rank:
        return False
    for node, i in v.uses():
        if node.domain:
            continue
        if i == 0 and (node.op_type in CHANNELS_FIRST or (node.op_type in RESIZE and _image_resize(node))
                       or (node.op_type == "Pad" and _spatial_pad(node))):
            return True
        if node.op_type in LAYOUT_FREE and any(_rank(out) == rank and _reaches_channels_first(out, depth + 1)
                                               for out in node.outputs):
            return True
    return False


def _spatial_pad(node: ir.Node) -> bool:
    """A Pad of the spatial dims of an image only (Keras' ZeroPaddingND is channels-last)."""
    pads = const(node.inputs[1]) if len(node.inputs) > 1 else None
    rank = _rank(node.inputs[0])
    if pads is None or not rank or rank < 3 or len(node.inputs) > 3 and node.inputs[3] is not None:
        return False
    return not any(pads[[0, 1, rank, rank + 1]])


def _image_resize(node: ir.Node) -> bool:
    """A Resize/Upsample that keeps the batch and channel axes (as far as constants tell)."""
    axes = node.attributes.get_ints("axes", None)
    if axes is not None:
        rank = _rank(node.inputs[0]) or 0
        return not {a % rank for a in axes} & {0, 1} if rank else False
    scales = node.attributes.get_floats("scales", None)
    if scales is None:
        k = 1 if node.op_type == "Upsample" else 2
        scales = const(node.inputs[k]) if len(node.inputs) > k and node.inputs[k] is not None else None
        if scales is not None:
            scales = scales.tolist()
    if scales:
        return len(scales) >= 3 and scales[0] == 1 and scales[1] == 1
    sizes = const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    shape = node.inputs[0].shape
    if sizes is not None and shape is not None:
        s = sizes.tolist()
        return len(s) >= 3 and all(not isinstance(d, int) or d == t for d, t in zip(shape[:2], s[:2]))
    return True  # sizes computed at run time: most often [N, C] of the input and new spatial sizes


def _already_channels_last(v: ir.Value, rank: int) -> bool:
    """An input that the graph itself transposes NHWC -> NCHW (a TF graph) is NHWC already."""
    to_first = [0, rank - 1, *range(1, rank - 1)]
    readers = [n for n, _ in v.uses()]
    return bool(readers) and all(n.op_type == "Transpose" and list(n.attributes.get_ints("perm", [])) == to_first
                                 for n in readers)


def _set(v: ir.Value, perm) -> None:
    if perm is None or list(perm) == sorted(perm):
        v.metadata_props.pop(PHYSICAL, None)
    else:
        v.metadata_props[PHYSICAL] = ",".join(str(p) for p in perm)


def _output_perms(node: ir.Node) -> list:
    rank = _rank(node.outputs[0])
    if node.op_type in CHANNELS_FIRST and node.domain == "" and rank and rank >= 3:
        return [channels_last(rank)] + [None] * (len(node.outputs) - 1)
    if node.op_type == "Transpose":
        p = node.attributes.get_ints("perm", None)
        src = physical_perm(node.inputs[0]) or tuple(range(rank or 0))
        if p is None or not rank:
            return [None]
        out = tuple(list(p).index(j) for j in src)  # the same data, viewed through `p`
        return [out if out[0] == 0 else None]
    if node.op_type in RESIZE and node.domain == "":
        return [physical_perm(node.inputs[0])]
    if node.op_type == "Reshape" and node.domain == "" and _group_norm_x(node) is not None:
        return [physical_perm(_group_norm_x(node))]
    if node.op_type in SLICE and node.domain == "" and const(node.inputs[0]) is None \
            and (len(node.inputs) < 4 or node.inputs[3] is None or const(node.inputs[3]) is not None):
        return [physical_perm(node.inputs[0])]  # wav2vec2's positional conv drops its last step
    if node.op_type in LAYOUT_FREE:
        for v in node.inputs:
            if v is not None and const(v) is None and _rank(v) == rank:
                return [physical_perm(v)] * len(node.outputs)
    return [None] * len(node.outputs)


def _group_norm_x(back: ir.Node) -> ir.Value | None:
    """x, where `back` ends PyTorch's decomposed GroupNorm of x: its output is x's shape again,
    held as x is (the exporters compute the whole chain as one layer on x as held):

        x -> Reshape([0, G, -1]) -> InstanceNormalization -> back = Reshape(_, Shape(x))
    """
    norm = back.inputs[0].producer() if back.inputs[0] is not None else None
    if norm is None or norm.op_type != "InstanceNormalization" or norm.domain or len(back.inputs) < 2:
        return None
    front = norm.inputs[0].producer()
    shape = back.inputs[1].producer() if back.inputs[1] is not None else None
    if front is None or front.op_type != "Reshape":
        return None
    x = front.inputs[0]
    return x if is_whole_shape(shape, x) else None


def _rank(v: ir.Value) -> int | None:
    return len(v.shape) if v is not None and v.shape is not None else None


def _flatten_into_dense(graph: ir.Graph, flat: ir.Node) -> bool:
    """Flatten(x held NHWC) -> FC: flatten in the held order, FC weight rows permuted to match."""
    x = flat.inputs[0]
    perm = physical_perm(x)
    dense = flattened_dense(flat) if perm is not None and perm[0] == 0 else None
    if dense is None:
        return False
    fc, w, trans_b = dense
    # the FC used to read flatten(x); now it reads flatten(x.transpose(perm)), the held order
    reorder_dense_inputs(graph, fc, w, trans_b, list(x.shape[1:]), [p - 1 for p in perm[1:]], "hwc_order")
    t = ir.node("Transpose", [x], {"perm": list(perm)}, name=f"{flat.name}_hwc_order")
    copy_provenance(flat, t)
    graph.insert_before(flat, t)
    t.outputs[0].shape = ir.Shape([x.shape[p] for p in perm])
    t.outputs[0].type = x.type
    flat.replace_input_with(0, t.outputs[0])
    _set(t.outputs[0], None)
    for out in flat.outputs:
        _set(out, None)
    return True
