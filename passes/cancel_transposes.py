"""cancel-transposes: move activation Transposes down the graph until they cancel."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from irbridge.provenance import copy_provenance

from . import register
from ._rewrite import apply_rules, rebuilt
from ._weights import (
    UNARY_ELEMENTWISE,
    add_initializer,
    const,
    flattened_dense,
    reorder_dense_inputs,
    reuse_or_add,
    single_reader,
)

BINARY_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal",
                      "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "PRelu"}
UNARY = UNARY_ELEMENTWISE - {"PRelu"} | {"Clip", "Cast", "Not", "Floor", "Ceil", "Round", "Sign",
                                         "Reciprocal", "Erf", "Sin", "Cos", "IsNaN", "IsInf"}
REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSumExp", "ReduceSumSquare", "ReduceLogSum"}


@register("cancel-transposes")
class CancelTransposes(ir.passes.InPlacePass):
    """Push activation Transposes down through layout-agnostic ops and cancel them in pairs.

    TF and Keras graphs arrive NHWC, with a Transpose on each side of every channels-first op:

        before:  Conv -> Transpose(0,2,3,1) -> Relu -> Add(bias[C]) -> Transpose(0,3,1,2) -> Conv
        after:   Conv -> Relu -> Add(bias[C,1,1]) -> Conv

    A Transpose moves past elementwise ops (constant operands are permuted to match, other
    operands must carry the same Transpose), Concat, Pad, Softmax and reductions with
    keepdims (their axes renumbered); two Transposes in a row compose, and vanish when the
    result is the identity. A Transpose feeding a Flatten that feeds a fully connected layer is
    removed by permuting the layer's weight columns (a Dense after a Flatten when the channel
    order changes, seed 002). Ops that ONNX defines channels-first only (Conv, pooling,
    BatchNormalization) stop a Transpose; the to-nhwc layout assignment handles those.
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(model, apply_rules(model, [(("Transpose",), _step)]))


def _perm(t: ir.Node) -> list[int] | None:
    perm = t.attributes.get_ints("perm", None)
    if perm is None:
        shape = t.inputs[0].shape
        return None if shape is None else list(reversed(range(len(shape))))
    return list(perm)


def _step(graph: ir.Graph, t: ir.Node) -> bool:
    perm = _perm(t)
    if perm is None:
        return False
    x, out = t.inputs[0], t.outputs[0]
    if perm == sorted(perm):  # identity transpose
        return _bypass(graph, t, x)
    if _compose_transposed_readers(graph, t, perm):
        return True
    reader = single_reader(out)
    if reader is None:
        return False
    op = reader.op_type
    if op in UNARY and reader.inputs[0] is out:
        return _sink(graph, t, reader, [x, *reader.inputs[1:]], {})
    if op in BINARY_ELEMENTWISE:
        return _sink_binary(graph, t, reader, perm)
    if op == "Concat":
        return _sink_concat(graph, t, reader, perm)
    if op in ("Softmax", "LogSoftmax") and reader.inputs[0] is out:
        axis = reader.attributes.get_int("axis", -1) % len(perm)
        return _sink(graph, t, reader, [x], {"axis": perm[axis]})
    if op in REDUCE and reader.inputs[0] is out:
        if reader.attributes.get_int("keepdims", 1):
            return _sink_reduce(graph, t, reader, perm)
        return _into_reduce(graph, t, reader, perm)
    if op == "Pad" and reader.inputs[0] is out:
        return _sink_pad(graph, t, reader, perm)
    if op in ("Flatten", "Reshape"):
        return _into_dense_weights(graph, t, reader, perm)
    return False


def _compose_transposed_readers(graph: ir.Graph, t: ir.Node, perm: list[int]) -> bool:
    """Transposes reading Transpose t read t's input directly, with the composed permutation (or
    none); t goes when nothing else reads it, and otherwise can sink through its other readers.

        before:  x -> T1 -> {Add, T2 -> Conv}     (T2 undoes T1)
        after:   x -> T1 -> Add;  x -> Conv
    """
    x, out = t.inputs[0], t.outputs[0]
    for r in [u.node for u in out.uses()]:
        p2 = _perm(r) if r.op_type == "Transpose" and r.domain == "" else None
        if p2 is None:
            continue
        combined = [perm[i] for i in p2]
        if combined != sorted(combined):
            _replace(graph, r, [r], "Transpose", [x], {"perm": combined})
        elif r.outputs[0].is_graph_output():
            _replace(graph, r, [r], "Identity", [x], {})
        else:
            r.outputs[0].replace_all_uses_with(x)
            graph.remove(r, safe=True)
        if not out.uses() and not out.is_graph_output():
            graph.remove(t, safe=True)
        return True
    return False


def _bypass(graph: ir.Graph, t: ir.Node, x: ir.Value) -> bool:
    if t.outputs[0].is_graph_output():
        return _replace(graph, t, [t], "Identity", [x], {})
    t.outputs[0].replace_all_uses_with(x)
    graph.remove(t, safe=True)
    return True


def _replace(graph, anchor: ir.Node, old: list[ir.Node], op_type: str, inputs, attrs) -> bool:
    new = ir.node(op_type, inputs, attrs, name=anchor.name)
    copy_provenance(anchor, new)
    ir.convenience.replace_nodes_and_values(graph, anchor, old, [new], [anchor.outputs[0]], [new.outputs[0]])
    return True


def _sink(graph, t: ir.Node, reader: ir.Node, inputs, attr_changes: dict, old=None) -> bool:
    """reader(T(x), ...) -> T(reader'(x, ...)); reader' has `attr_changes` applied."""
    if any(o.uses() or o.is_graph_output() for o in reader.outputs[1:]):
        return False
    moved = rebuilt(reader, inputs, attr_changes)
    new_t = ir.node("Transpose", [moved.outputs[0]], {"perm": _perm(t)}, name=t.name)
    copy_provenance(t, new_t)
    ir.convenience.replace_nodes_and_values(graph, reader, (old or []) + [t, reader], [moved, new_t],
                                            [reader.outputs[0]], [new_t.outputs[0]])
    return True


def _sink_binary(graph, t: ir.Node, reader: ir.Node, perm: list[int]) -> bool:
    inverse = list(np.argsort(perm))
    rank = len(perm)
    new_inputs, extra_old = [], []
    for v in reader.inputs:
        if v is t.outputs[0]:
            new_inputs.append(t.inputs[0])
            continue
        producer = v.producer()
        c = const(v)
        if c is not None and c.ndim <= rank:
            expanded = c.reshape((1,) * (rank - c.ndim) + c.shape)
            if reader.op_type == "PRelu" and c.ndim < rank:
                return False  # PRelu broadcasts one way only; keep it simple
            new_inputs.append(reuse_or_add(graph, v, expanded.transpose(inverse), reader, "perm"))
        elif producer is not None and producer.op_type == "Transpose" and _perm(producer) == perm \
                and single_reader(v) is reader:
            new_inputs.append(producer.inputs[0])
            extra_old.append(producer)
        else:
            return False
    return _sink(graph, t, reader, new_inputs, {}, old=extra_old)


def _sink_concat(graph, t: ir.Node, reader: ir.Node, perm: list[int]) -> bool:
    inputs, old = [], []
    for v in reader.inputs:
        producer = v.producer()
        if producer is None or producer.op_type != "Transpose" or _perm(producer) != perm \
                or single_reader(v) is not reader:
            return False
        inputs.append(producer.inputs[0])
        if producer is not t:
            old.append(producer)
    axis = reader.attributes.get_int("axis", 0) % len(perm)
    return _sink(graph, t, reader, inputs, {"axis": perm[axis]}, old=old)


def _reduce_axes(reader: ir.Node, rank: int) -> tuple[list[int] | None, bool] | None:
    """(the reduced axes, or None for all; whether they are an input), or None when they are
    computed at run time."""
    if len(reader.inputs) > 1 and reader.inputs[1] is not None:
        axes = const(reader.inputs[1])
        return None if axes is None else ([int(a) % rank for a in axes.reshape(-1)], True)
    axes = reader.attributes.get_ints("axes", None)
    return (None if axes is None else [int(a) % rank for a in axes]), False


def _sink_reduce(graph, t: ir.Node, reader: ir.Node, perm: list[int]) -> bool:
    found = _reduce_axes(reader, len(perm))
    if found is None:
        return False
    axes, as_input = found
    if axes is None:  # all axes: the layout does not matter
        return _sink(graph, t, reader, [t.inputs[0]], {})
    new_axes = [perm[a] for a in axes]
    if as_input:
        return _sink(graph, t, reader, [t.inputs[0], add_initializer(graph, f"{reader.name}_axes",
                                                                     np.array(new_axes, np.int64))], {})
    return _sink(graph, t, reader, [t.inputs[0]], {"axes": new_axes})


def _into_reduce(graph, t: ir.Node, reader: ir.Node, perm: list[int]) -> bool:
    """Reduce(T(x), keepdims=0) -> Reduce(x) when the kept axes stay in order (global pooling:
    ReduceMean(T(x, NCHW->NHWC), axes=[1, 2]) is ReduceMean(x, axes=[2, 3]), both (N, C))."""
    rank = len(perm)
    axes, as_input = _reduce_axes(reader, rank) or (None, False)
    if axes is None:
        return False
    kept = [perm[i] for i in range(rank) if i not in axes]
    if kept != sorted(kept):
        return False
    new_axes = np.array(sorted(perm[a] for a in axes), np.int64)
    if as_input:
        reader.replace_input_with(1, add_initializer(graph, f"{reader.name}_axes", new_axes))
    else:
        reader.attributes["axes"] = ir.convenience.convert_attribute("axes", [int(a) for a in new_axes])
    reader.replace_input_with(0, t.inputs[0])
    if not t.outputs[0].uses() and not t.outputs[0].is_graph_output():
        graph.remove(t, safe=True)
    return True


def _sink_pad(graph, t: ir.Node, reader: ir.Node, perm: list[int]) -> bool:
    pads = const(reader.inputs[1])
    rank = len(perm)
    if pads is None or len(pads) != 2 * rank or (len(reader.inputs) > 3 and reader.inputs[3] is not None):
        return False
    new = np.zeros_like(pads)
    for i, p in enumerate(perm):
        new[p], new[p + rank] = pads[i], pads[i + rank]
    new_pads = add_initializer(graph, f"{reader.name}_pads", new.astype(np.int64))
    return _sink(graph, t, reader, [t.inputs[0], new_pads, *reader.inputs[2:]], {})


def _into_dense_weights(graph, t: ir.Node, flat: ir.Node, perm: list[int]) -> bool:
    """Flatten(T(x)) -> FC: drop T and permute the FC weight's input columns instead."""
    dense = flattened_dense(flat) if perm[0] == 0 else None
    x = t.inputs[0]
    if dense is None or x.shape is None or not all(isinstance(d, int) for d in x.shape[1:]):
        return False
    fc, w, trans_b = dense
    # the FC used to read flatten(x.transpose(perm)); now it reads flatten(x)
    q = [p - 1 for p in perm[1:]]  # undone: read in x's order what was read in x.transpose(perm)'s
    reorder_dense_inputs(graph, fc, w, trans_b, [x.shape[1:][a] for a in q], list(np.argsort(q)), "flatten_order")
    flat.replace_input_with(0, x)
    graph.remove(t, safe=True)
    return True
