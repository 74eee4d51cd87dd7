"""dense-to-conv: fully connected layers become convolutions (FCN-style nets, seeds 000/004)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import apply_rules
from ._weights import UNARY_ELEMENTWISE, const, dense_weight, reuse_or_add, single_reader


@register("dense-to-conv")
class DenseToConv(ir.passes.InPlacePass):
    """Turn fully connected layers into convolutions, bias carried.

    An FC layer after a flatten of a CxHxW map is an HxW convolution (FCN's fc6, seed 000);
    FC layers after it become 1x1 convolutions once the Flatten is moved past the activations:

        before:  x[N,512,7,7] -> Flatten -> Gemm(W[4096,25088], b) -> Relu -> Gemm(W7, b7)
        after:   x[N,512,7,7] -> Conv(W.reshape(4096,512,7,7), b, 7x7) -> Relu -> Conv(1x1) -> Flatten

    A Transpose between the map and the Flatten (TF flattens NHWC) is absorbed into the kernel.
    A MatMul(+Add) over the channels of an NHWC tensor (a Keras Dense on a 4-D tensor, seed 004)
    becomes Transpose -> 1x1 Conv -> Transpose. Optional: not in the default pipeline.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = apply_rules(model, [
            (("Gemm", "MatMul"), _flattened_fc_to_conv),
            (("MatMul",), _channel_matmul_to_conv),
            (UNARY_ELEMENTWISE, _sink_flatten),
        ])
        return ir.passes.PassResult(model, modified)


def _fc(graph: ir.Graph, node: ir.Node):
    """(W [out, in], bias or None, nodes to replace, the output value) of an FC layer: a plain
    Gemm, or a MatMul by a constant matrix optionally followed by an Add of a constant bias."""
    if node.op_type == "Gemm":
        wb = dense_weight(node)
        return None if wb is None else (wb[0], wb[1], [node], node.outputs[0])
    w = const(node.inputs[1])
    if w is None or w.ndim != 2:
        return None
    add = single_reader(node.outputs[0])
    if add is not None and add.op_type == "Add":
        other = add.inputs[1] if add.inputs[0] is node.outputs[0] else add.inputs[0]
        bias = const(other)
        if bias is not None and bias.size == w.shape[1] and bias.shape[-1] == w.shape[1]:
            return w.T, bias.reshape(-1), [node, add], add.outputs[0]
    return w.T, None, [node], node.outputs[0]


def _flattened_fc_to_conv(graph: ir.Graph, node: ir.Node) -> bool:
    flat = node.inputs[0].producer()
    if flat is None or single_reader(node.inputs[0]) is not node or not _is_flatten(flat):
        return False
    src, perm, absorbed = flat.inputs[0], [0, 1, 2, 3], [flat]
    t = src.producer()
    if t is not None and t.op_type == "Transpose" and single_reader(src) is flat:
        perm = list(t.attributes.get_ints("perm", []))
        if len(perm) != 4 or perm[0] != 0:
            return False
        src, absorbed = t.inputs[0], [t, flat]
    shape = _static_chw(src)
    fc = _fc(graph, node)
    if shape is None or fc is None:
        return False
    w, bias, fc_nodes, out = fc
    transposed = [shape[p - 1] for p in perm[1:]]  # the dims in the order the Flatten saw them
    if w.shape[1] != int(np.prod(shape)):
        return False
    inverse = np.argsort(perm[1:])
    kernel = w.reshape(w.shape[0], *transposed).transpose(0, *(inverse + 1))
    weight = reuse_or_add(graph, node.inputs[1], kernel, node, "conv")
    inputs = [src, weight]
    if bias is not None:
        inputs.append(reuse_or_add(graph, fc_nodes[-1].inputs[2] if node.op_type == "Gemm"
                                   else _bias_value(fc_nodes[-1], out), bias, fc_nodes[-1], "conv"))
    conv = ir.node("Conv", inputs, {"kernel_shape": [shape[1], shape[2]]}, name=node.name)
    flat_out = ir.node("Flatten", [conv.outputs[0]], {"axis": 1}, name=f"{node.name}_flatten")
    for n in (conv, flat_out):
        copy_provenance(node, n)
    ir.convenience.replace_nodes_and_values(graph, fc_nodes[-1], absorbed + fc_nodes, [conv, flat_out],
                                            [out], [flat_out.outputs[0]])
    return True


def _bias_value(add: ir.Node, out: ir.Value) -> ir.Value:
    return add.inputs[1] if const(add.inputs[1]) is not None else add.inputs[0]


def _channel_matmul_to_conv(graph: ir.Graph, node: ir.Node) -> bool:
    x = node.inputs[0]
    if x.shape is None or len(x.shape) != 4 or not isinstance(x.shape[3], int):
        return False
    fc = _fc(graph, node)
    if fc is None:
        return False
    w, bias, fc_nodes, out = fc
    if w.shape[1] != x.shape[3]:
        return False
    to_nchw = ir.node("Transpose", [x], {"perm": [0, 3, 1, 2]}, name=f"{node.name}_to_nchw")
    inputs = [to_nchw.outputs[0], reuse_or_add(graph, node.inputs[1], w[:, :, None, None], node, "conv")]
    if bias is not None:
        inputs.append(reuse_or_add(graph, _bias_value(fc_nodes[-1], out), bias, fc_nodes[-1], "conv"))
    conv = ir.node("Conv", inputs, {"kernel_shape": [1, 1]}, name=node.name)
    to_nhwc = ir.node("Transpose", [conv.outputs[0]], {"perm": [0, 2, 3, 1]}, name=f"{node.name}_to_nhwc")
    for n in (to_nchw, conv, to_nhwc):
        copy_provenance(node, n)
    ir.convenience.replace_nodes_and_values(graph, fc_nodes[-1], fc_nodes, [to_nchw, conv, to_nhwc],
                                            [out], [to_nhwc.outputs[0]])
    return True


def _sink_flatten(graph: ir.Graph, node: ir.Node) -> bool:
    """act(Flatten(y)) -> Flatten(act(y)), so that the next FC layer sees the 4-D map."""
    flat = node.inputs[0].producer()
    if flat is None or flat.op_type != "Flatten" or single_reader(flat.outputs[0]) is not node \
            or any(o.uses() or o.is_graph_output() for o in node.outputs[1:]):
        return False
    if flat.attributes.get_int("axis", 1) != 1 or node.op_type == "PRelu":
        return False
    act = ir.Node(node.domain, node.op_type, [flat.inputs[0], *node.inputs[1:]],
                  list(node.attributes.values()), name=node.name, num_outputs=1)
    copy_provenance(node, act)
    new_flat = ir.node("Flatten", [act.outputs[0]], {"axis": 1}, name=flat.name)
    copy_provenance(flat, new_flat)
    ir.convenience.replace_nodes_and_values(graph, node, [flat, node], [act, new_flat],
                                            [node.outputs[0]], [new_flat.outputs[0]])
    return True


def _is_flatten(node: ir.Node) -> bool:
    if node.op_type == "Flatten":
        return node.attributes.get_int("axis", 1) == 1
    if node.op_type == "Reshape":  # x.view(N, -1), as torch and TF export a flatten
        out, src = node.outputs[0].shape, node.inputs[0].shape
        return out is not None and src is not None and len(out) == 2 and len(src) == 4 \
            and out[0] == src[0] and isinstance(out[1], int)
    return False


def _static_chw(v: ir.Value) -> tuple[int, int, int] | None:
    if v.shape is None or len(v.shape) != 4 or not all(isinstance(d, int) for d in v.shape[1:]):
        return None
    return tuple(v.shape[1:])
