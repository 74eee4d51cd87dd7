"""Drive the conversion of a graph: each node through its registered converter into a
GraphBuilder, every problem collected and listed at once, the outputs bound, and the finished
torch.fx GraphModule carrying what codegen and verify need (specs, value names, inputs)."""

from __future__ import annotations

import onnx_ir as ir
import torch.fx as fx

from ... import progress, provenance
from ..._io import prefetch_mapped, release_mapped
from ...errors import UnsupportedError
from ...verify import input_specs, layer_outputs
from . import registry
from .builder import TORCH_DTYPES, Dims, GraphBuilder, NodeContext
from .registry import Unsupported


def build(model: ir.Model) -> fx.GraphModule:
    """Convert every node; raise UnsupportedError listing every node that cannot be."""
    b = GraphBuilder(model)
    graph = model.graph
    for value in graph.inputs:
        if value.name in graph.initializers:
            continue
        ph = b.graph.placeholder(provenance.python_name(value.name))
        b.env[value.name] = ph
        b.values[value.name] = ph.name
        for k, d in enumerate(value.shape or ()):
            if isinstance(d, ir.SymbolicDim) and isinstance(d.value, str):
                b.input_dims.setdefault(d.value, (ph, k))
    tick = progress.current()
    tick.stage("building PyTorch layers", total=len(graph))
    problems = convert_nodes(b, graph, tick.advance)
    if problems:
        raise UnsupportedError(_problem_message(problems), nodes=[n.name for n, _ in problems])
    finish(b, graph)
    return _module(b, model)


def convert_nodes(b: GraphBuilder, graph, advance=None) -> list[tuple[ir.Node, str]]:
    """Convert every node of `graph` into `b`; return the (node, why) of those that cannot be."""
    problems: list[tuple[ir.Node, str]] = []
    for node in graph:
        if advance is not None:
            advance()
        if node in b.done:
            continue
        fn = registry.lookup(node.op_type, b.opset if not node.domain else 1, node.domain)
        why = None
        if fn is None:
            why = "no PyTorch converter for this op"
        else:
            bad = [v.name for v in list(node.inputs) + list(node.outputs)
                   if v is not None and v.dtype is not None and v.dtype not in TORCH_DTYPES]
            if bad:
                why = f"element type {node.inputs[0].dtype if node.inputs and node.inputs[0] else '?'} has no PyTorch equivalent"
        if why is None:
            try:
                prefetch_mapped(node.inputs)
                result = fn(NodeContext(b, node))
                _bind_outputs(b, node, result)
                release_mapped(node.inputs)  # its weights are copied: unmap the file's pages
                continue
            except Unsupported as e:
                why = str(e)
        problems.append((node, why))
        for out in node.outputs:  # keep going, to list every problem at once
            b.env[out.name] = b.graph.placeholder(b.fresh("unsupported_" + out.name))
    return problems


def finish(b: GraphBuilder, graph: ir.Graph) -> None:
    """Add the graph's outputs (one value, or a tuple) and drop sizes nothing reads."""
    outs = [b.value_of(v) for v in graph.outputs]
    b.graph.output(outs[0] if len(outs) == 1 else tuple(outs))
    for node in b._sizes.values():  # sizes read for shape values that folded away
        if not node.users:
            b.graph.erase_node(node)


def _module(b: GraphBuilder, model: ir.Model) -> fx.GraphModule:
    graph = model.graph
    gm = fx.GraphModule(b.root, b.graph, class_name="Model")
    gm.eval()
    gm.irbridge_specs = b.specs
    gm.irbridge_containers = sorted(b.containers)
    gm.irbridge_values = dict(b.values)
    gm.irbridge_inputs = [v.name for v in graph.inputs if v.name not in graph.initializers]
    gm.irbridge_outputs = [v.name for v in graph.outputs]
    gm.irbridge_specs_in = input_specs(model)
    gm.irbridge_layers = layer_outputs(model)
    return gm


def _bind_outputs(b: GraphBuilder, node: ir.Node, result) -> None:
    if node in b.done:  # its converter bound the outputs of the chain it replaced
        return
    results = result if isinstance(result, tuple) else (result,)
    for out, res in zip(node.outputs, results):
        if not out.name:
            continue
        if isinstance(res, Dims):
            b.dims[out.name] = res
            continue
        b.env[out.name] = res
        if isinstance(res, fx.Node):
            b.values[out.name] = res.name
    if len(results) < sum(1 for o in node.outputs if o.name and (o.uses() or o.is_graph_output())):
        raise Unsupported(f"output {len(results)} of {node.op_type} is used but not produced")


def _problem_message(problems) -> str:
    lines = [f"{len(problems)} node(s) cannot be converted to PyTorch:"]
    for node, why in problems:
        src = node.metadata_props.get(provenance.SOURCE, node.name)
        where = f"{node.name}" + (f" (layer {src})" if src and src != node.name else "")
        lines.append(f"  - {where}: {node.op_type}: {why}")
    lines.append("Supported ops are listed by `irbridge ops --target torch`.")
    return "\n".join(lines)
