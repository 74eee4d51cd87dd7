"""Running ONNX graphs on onnxruntime: whole (the reference of every check), value by value
(layerwise), or a few nodes alone (local error, diagnosis)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import onnx
import onnx_ir as ir

from .. import provenance
from .inputs import input_specs
from .runners import Runner


def onnx_runner(model: ir.Model) -> Runner:
    names_in = [v.name for v in model.graph.inputs if v.name not in model.graph.initializers]
    names_out = [v.name for v in model.graph.outputs]
    session = {}  # created on the first run, dropped by close(): one copy of the weights at a time

    to_file, from_file = _interface_layouts(model)

    def file_feeds(feeds):
        return {k: feeds[k].transpose(to_file[k]) if k in to_file else feeds[k] for k in names_in}

    def run(feeds):
        if not session:
            session["s"], session["weights"] = _loaded(model)
        outs = session["s"].run(names_out, {**file_feeds(feeds), **session["weights"]})
        return {n: o.transpose(from_file[n]) if n in from_file else o for n, o in zip(names_out, outs)}

    def values(feeds, reference=None):
        extra = [n for n in _all_value_names(model) if n not in names_out]
        p = _in_memory_proto(model)
        for n in extra:
            p.graph.output.append(onnx.ValueInfoProto(name=n))
        s = _session(p)
        outs = dict(zip([o.name for o in p.graph.output], s.run(None, file_feeds(feeds))))
        if reference is None:
            return outs
        return _local_values(model, {**feeds, **outs}, reference)

    specs = [(n, _canonical_shape(s, to_file.get(n)), d) for n, s, d in input_specs(model)]
    return Runner(names_in, names_out, run, specs, values, layer_outputs(model), local=True,
                  close=session.clear, model=model)


def _local_values(model: ir.Model, own: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict:
    """Each layer's output when its nodes alone run on the reference's values of their inputs
    (the candidate's own where the reference has no value of that name): the local error."""
    by_layer: dict[str, list] = {}
    for node in model.graph:
        layer = node.metadata_props.get(provenance.SOURCE)
        if layer:
            by_layer.setdefault(layer, []).append(node)
    feeds = {**own, **{k: v for k, v in reference.items() if k in own}}
    out = {}
    for layer, value in layer_outputs(model).items():
        try:
            got = run_nodes(model, by_layer.get(layer, []), value, feeds)
        except Exception:  # noqa: BLE001 - a layer that cannot run alone keeps no local error
            got = None
        if got is not None:
            out[value] = got
    return out


def run_nodes(model: ir.Model, nodes: list, output: str, feeds: Mapping[str, np.ndarray], target=None,
              inputs: Mapping[int, np.ndarray] | None = None, attributes: Mapping | None = None) -> np.ndarray | None:
    """Run `nodes` of `model` alone on onnxruntime and return `output`; their inputs come from
    `feeds` or the model's initializers. `target`'s inputs (by index) and attributes can be replaced."""
    produced = {o.name for n in nodes for o in n.outputs}
    if output not in produced:
        return None
    protos, inits, seen = [], [], set()
    for n in nodes:
        p = ir.serde.serialize_node(n)
        if n is target:
            for name, value in (attributes or {}).items():
                for a in list(p.attribute):
                    if a.name == name:
                        p.attribute.remove(a)
                p.attribute.append(onnx.helper.make_attribute(name, value))
        protos.append(p)
        for i, v in enumerate(n.inputs):
            if v is None or v.name in produced or v.name in seen:
                continue
            seen.add(v.name)
            if n is target and inputs and i in inputs:
                array = inputs[i]
            elif v.const_value is not None:
                array = v.const_value.numpy()
            elif v.name in feeds:
                array = feeds[v.name]
            else:
                return None
            inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(array), v.name))
    graph = onnx.helper.make_graph(protos, "layer", [], [onnx.ValueInfoProto(name=output)], inits)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid(d, v)
                                                         for d, v in model.opset_imports.items()])
    proto.ir_version = max(model.ir_version or 8, 8)
    return _session(proto).run(None, {})[0]


def _canonical_shape(shape: tuple, to_file: list[int] | None) -> tuple:
    """The NCHW shape of an input stored channels-last (to_file maps NCHW -> file order)."""
    if to_file is None:
        return shape
    inverse = np.argsort(to_file)
    return tuple(shape[i] for i in inverse)


_CHANNELS_LAST = {"NWC": [0, 2, 1], "NHWC": [0, 2, 3, 1], "NDHWC": [0, 2, 3, 4, 1]}


def _interface_layouts(model: ir.Model) -> tuple[dict, dict]:
    """Graph inputs/outputs marked channels-last (irbridge.layout): the permutations from the
    canonical NCHW order into the file's order (inputs) and back (outputs)."""
    to_file = {v.name: _CHANNELS_LAST[v.metadata_props[provenance.LAYOUT]] for v in model.graph.inputs
               if v.metadata_props.get(provenance.LAYOUT) in _CHANNELS_LAST}
    from_file = {v.name: list(np.argsort(_CHANNELS_LAST[v.metadata_props[provenance.LAYOUT]]))
                 for v in model.graph.outputs if v.metadata_props.get(provenance.LAYOUT) in _CHANNELS_LAST}
    return to_file, from_file


def _in_memory_proto(model: ir.Model) -> onnx.ModelProto:
    """The model as a proto with every weight inline (onnxruntime cannot resolve external
    data of a model given as bytes)."""
    proto = ir.to_proto(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        inline = model.clone()
        for v in inline.graph.initializers.values():
            if isinstance(v.const_value, ir.ExternalTensor):
                v.const_value = ir.Tensor(v.const_value.numpy(), name=v.name)
        proto = ir.to_proto(inline)
    return proto


def _session(proto: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # errors reach the caller as exceptions (the size search expects some)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - a model newer than onnxruntime's IR: say the newest it takes
        newest = re.search(r"Unsupported model IR version: \d+, max supported IR version: (\d+)", str(e))
        if newest is None:
            raise
        proto.ir_version = int(newest.group(1))
        return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _loaded(model: ir.Model):
    """_model_session, with a graph onnxruntime refuses to load (at any size) said plainly."""
    try:
        return _model_session(model)
    except Exception as e:
        if not type(e).__module__.startswith("onnxruntime"):
            raise
        from ..errors import InputError

        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"onnxruntime cannot load the graph the check compares against: {text} "
                         "(the model is not valid ONNX as it stands; --no-check skips the check)") from e


def _model_session(model: ir.Model):
    """(session, weight feeds) for `model`. Its large weights become graph inputs fed at run time:
    onnxruntime reads them where they lie (e.g. the mapped source file) instead of copying them,
    and models over protobuf's 2 GB limit need no temporary file."""
    from ..exporters.onnx import split_large_weights

    proto, large = split_large_weights(model)
    proto.graph.input.extend(onnx.helper.make_tensor_value_info(name, header.data_type, header.dims)
                             for name, (header, _) in large.items())
    return _session(proto), {name: tensor.numpy() for name, (_, tensor) in large.items()}


def layer_outputs(model: ir.Model) -> dict[str, str]:
    """{source layer: the ONNX value holding its output}, in graph order (last node wins)."""
    out: dict[str, str] = {}
    for node in model.graph:
        if not node.outputs or not node.outputs[0].name:
            continue
        out.pop(provenance.source_of(node), None)
        out[provenance.source_of(node)] = node.outputs[0].name
    return out


def _all_value_names(model: ir.Model) -> list[str]:
    return [o.name for node in model.graph for o in node.outputs if o.name]
