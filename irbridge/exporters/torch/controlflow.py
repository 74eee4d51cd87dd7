"""Subgraphs (If branches, Loop and Scan bodies) as methods of one small module per node.

An ONNX `If` becomes a submodule `self.if_1 = If1()` whose class model.py defines:

    class If1(nn.Module):
        def forward(self, cond, x):
            if bool(cond):
                return self.then_branch(x)
            return self.else_branch(x)

        def then_branch(self, x):
            ...  # the then-subgraph's layers, converted as any graph is

Each subgraph is converted by a `SubgraphBuilder` into its own torch.fx graph over the node's
module (its layers and buffers live there); values a subgraph reads from outer scopes become
extra arguments, passed by the outer graph. The method text is fx's code for that graph, and
`forward` is Python control flow written by the op's converter (ops/controlflow.py); the same
text is compiled for the in-memory module and written to model.py, so both run the same code.
"""

from __future__ import annotations

import onnx_ir as ir
import torch
import torch.fx as fx
from torch import nn

from ... import provenance
from . import builder as _builder
from . import convert as _convert
from .registry import Unsupported

# Names a control-flow module's own attributes may not take (its methods, Python's words).
_RESERVED = {"forward", "then_branch", "else_branch", "body", "self", "cond", "torch", "F", "nn", "math",
             "i", "trip_count"}


def check_tensor_types(node: ir.Node) -> None:
    """Refuse sequence- and optional-typed inputs and outputs (no tensor in torch for them)."""
    for v in list(node.inputs) + list(node.outputs):
        if v is not None and isinstance(v.type, (ir.SequenceType, ir.OptionalType)):
            raise Unsupported(f"{node.op_type} over a sequence or optional value ({v.name!r}): only tensors "
                              "are exported")


def captures(graphs: list[ir.Graph]) -> list[ir.Value]:
    """The values the subgraphs (and subgraphs nested in them) read from outer scopes, in
    first-use order; constants are not captures (they become the module's buffers)."""
    inner: set[int] = set()
    found: dict[int, ir.Value] = {}

    def walk(g: ir.Graph) -> None:
        inner.update(id(v) for v in g.inputs)
        for node in g:
            for v in node.inputs:
                if v is not None and id(v) not in inner and v.const_value is None:
                    found.setdefault(id(v), v)
            for attr in node.attributes.values():
                if attr.type == ir.AttributeType.GRAPH:
                    walk(attr.value)
                elif attr.type == ir.AttributeType.GRAPHS:
                    for sub in attr.value:
                        walk(sub)
            inner.update(id(o) for o in node.outputs)

    for g in graphs:
        walk(g)
    return list(found.values())


def arg_names(values: list, taken: set[str]) -> list[str]:
    """Python argument names for values (or names), unique and clear of `taken` (updated)."""
    names = []
    for v in values:
        base = provenance.python_name((v if isinstance(v, str) else v.name) or "v")
        name, k = base, 1
        while name in taken or name in _RESERVED:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        names.append(name)
    return names


class ControlFlow:
    """The module of one control-flow node, built branch by branch (then_branch, body, ...)."""

    def __init__(self, ctx, kind: str):
        parent: _builder.GraphBuilder = ctx.builder
        self.ctx = ctx
        counter = getattr(parent, "_control_flow", None)
        if counter is None:
            counter = parent._control_flow = [0]  # shared by nested builders: unique class names
        counter[0] += 1
        self.cls = type(f"{kind}{counter[0]}", (nn.Module,), {"__module__": __name__})
        self.module = self.cls()
        self.specs: dict[str, _builder.ModuleSpec] = {}
        self.names: set[str] = set(_RESERVED)
        self.graphs: dict[str, fx.Graph] = {}
        self.counter = counter
        self.name = parent.fresh(self.cls.__name__.lower())  # self.if1 = If1()

    def method(self, name: str, graph: ir.Graph, captured: list[ir.Value]) -> None:
        """Convert `graph` into method `name(self, *graph inputs, *captured)`."""
        sb = SubgraphBuilder(self.ctx.builder, self)
        for v in list(graph.inputs) + list(captured):
            ph = sb.graph.placeholder(provenance.python_name(v.name or "v"))
            sb.env[v.name] = ph
        problems = _convert.convert_nodes(sb, graph)
        if problems:
            raise Unsupported(f"its {name} cannot be converted: " + "; ".join(
                f"{n.name or n.op_type}: {n.op_type}: {why}" for n, why in problems))
        _convert.finish(sb, graph)
        self.graphs[name] = sb.graph

    def finish(self, forward: str, args: list) -> fx.Node:
        """Compile the methods and `forward` (its text), add the module to the outer graph and
        return the call node `self.<name>(*args)`."""
        for name, graph in self.graphs.items():
            code = graph.python_code(root_module="self")
            setattr(self.cls, name, _compile(code.src.replace("def forward(", f"def {name}("), code.globals, name))
        self.cls.forward = _compile(forward, {"torch": torch}, "forward")
        self.cls.irbridge_forward = forward
        self.cls.irbridge_graphs = dict(self.graphs)
        self.module.irbridge_specs = self.specs
        self.module.eval()
        b = self.ctx.builder
        b.root.add_module(self.name, self.module)
        b.specs[self.name] = _builder.ModuleSpec(self.cls, {})
        return b.create("call_module", self.name, args, {}, self.name if len(self.ctx.node.outputs) > 1
                        else self.ctx.out_name())


def _compile(src: str, globals_: dict, name: str):
    scope = dict(globals_)
    exec(compile(src, f"<irbridge {name}>", "exec"), scope)
    return scope[name]


class SubgraphBuilder(_builder.GraphBuilder):
    """A GraphBuilder for one subgraph: its layers go to the control-flow node's module."""

    def __init__(self, parent: _builder.GraphBuilder, flow: ControlFlow):
        super().__init__(parent.model)
        self.opset = parent.opset
        self.root = flow.module
        self.specs = flow.specs
        self._used_names = flow.names
        self._control_flow = flow.counter

    def module_name(self, onnx_node: ir.Node) -> str:
        return self.fresh(provenance.source_of(onnx_node))  # flat inside the node's module
