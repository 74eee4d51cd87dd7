"""to-nhwc: give the graph channels-last (NHWC) inputs and outputs with the fewest Transposes."""

from __future__ import annotations

import onnx_ir as ir

from irbridge.provenance import LAYOUT

from . import register
from .cancel_transposes import CancelTransposes

# rank -> (channels-last name, perm NCHW->NHWC, perm NHWC->NCHW)
_LAST = {
    4: ("NHWC", [0, 2, 3, 1], [0, 3, 1, 2]),
    5: ("NDHWC", [0, 2, 3, 4, 1], [0, 4, 1, 2, 3]),
}


@register("to-nhwc")
class ToNHWC(ir.passes.InPlacePass):
    """Make image inputs and outputs channels-last, then cancel every Transpose ONNX allows.

    Each rank-4 (rank-5) graph input becomes NHWC (NDHWC) and is transposed to NCHW for the
    channels-first ops inside; each such output is transposed back. cancel-transposes then
    moves these Transposes through layout-agnostic ops until they meet a channels-first op
    (Conv, pooling, BatchNormalization) or cancel:

        before:  x[1,3,224,224] -> Conv -> ... -> y[1,21,224,224]
        after:   x[1,224,224,3] -> Transpose(0,3,1,2) -> Conv -> ... -> Transpose(0,2,3,1) -> y[1,224,224,21]

    The interfaces carry `irbridge.layout` (NHWC), so verification feeds and compares them in
    the right order; `remaining_transposes` names what is left. Not in the default pipeline
    (`irbridge convert --to onnx --layout nhwc`).
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for value in list(graph.inputs):
            rank = len(value.shape) if value.shape is not None else None
            if rank not in _LAST or value.name in graph.initializers or LAYOUT in value.metadata_props:
                continue
            name, to_last, to_first = _LAST[rank]
            readers = list(value.uses())
            t = ir.node("Transpose", [value], {"perm": to_first}, name=f"{value.name}_to_nchw")
            t.metadata_props["irbridge.source"] = f"{value.name} (NHWC input)"
            t.metadata_props["irbridge.source_op"] = "layout"
            for user, index in readers:
                user.replace_input_with(index, t.outputs[0])
            if len(graph):
                graph.insert_before(graph.node(0), t)
            else:
                graph.append(t)
            value.shape = ir.Shape([value.shape[p] for p in to_last])
            value.metadata_props[LAYOUT] = name
            modified = True
        for i, value in enumerate(list(graph.outputs)):
            rank = len(value.shape) if value.shape is not None else None
            if rank not in _LAST or LAYOUT in value.metadata_props:
                continue
            name, to_last, _ = _LAST[rank]
            out_name = value.name
            value.name = f"{out_name}_nchw"
            t = ir.node("Transpose", [value], {"perm": to_last}, name=f"{out_name}_to_nhwc")
            t.metadata_props["irbridge.source"] = f"{out_name} (NHWC output)"
            t.metadata_props["irbridge.source_op"] = "layout"
            graph.append(t)
            t.outputs[0].name = out_name
            t.outputs[0].shape = ir.Shape([value.shape[p] for p in to_last])
            t.outputs[0].type = value.type
            t.outputs[0].metadata_props[LAYOUT] = name
            graph.outputs[i] = t.outputs[0]
            modified = True
        if modified:
            CancelTransposes()(model)
            model.metadata_props["irbridge.io_layout"] = "nhwc"
        return ir.passes.PassResult(model, modified)


def remaining_transposes(model: ir.Model) -> list[dict]:
    """Every Transpose left on activations: node, layer, perm, and why it stays."""
    out = []
    for node in model.graph:
        if node.op_type != "Transpose":
            continue
        perm = list(node.attributes.get_ints("perm", []))
        reader = next((n.op_type for n, _ in node.outputs[0].uses()), None)
        producer = node.inputs[0].producer()
        if reader is not None:
            reason = f"feeds {reader}, which ONNX defines channels-first only"
        else:
            made_by = producer.op_type if producer is not None else "a graph input"
            reason = f"turns the channels-first result of {made_by} into the NHWC output"
        out.append({"node": node.name, "layer": node.metadata_props.get("irbridge.source", node.name),
                    "perm": perm, "reason": reason})
    return out
