"""Build a torch.fx GraphModule from an ONNX graph, one registered converter per node.

The module holds real layers (`nn.Conv2d`, `nn.Linear`, ...) named after the source layers;
ops without a natural layer become calls of torch functions. Every constructor call is
recorded (`ModuleSpec`) so that `codegen` can write the same module as readable code.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import numpy as np
import onnx_ir as ir
import torch
import torch.fx as fx
from torch import nn

from ... import provenance
from . import hierarchy
from .registry import Unsupported

# ONNX element types torch can hold and compute with.
TORCH_DTYPES = {
    ir.DataType.FLOAT: torch.float32,
    ir.DataType.DOUBLE: torch.float64,
    ir.DataType.FLOAT16: torch.float16,
    ir.DataType.BFLOAT16: torch.bfloat16,
    ir.DataType.INT8: torch.int8,
    ir.DataType.INT16: torch.int16,
    ir.DataType.INT32: torch.int32,
    ir.DataType.INT64: torch.int64,
    ir.DataType.UINT8: torch.uint8,
    ir.DataType.BOOL: torch.bool,
}


# Ops whose PyTorch layer returns a new tensor, never a view of an input: a following activation
# may overwrite it in place. (Reshape, Flatten, Squeeze, Identity, Dropout... may return views.)
FRESH_OUTPUT_OPS = frozenset({
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "LayerNormalization",
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Concat", "MaxPool", "AveragePool",
})


@dataclasses.dataclass
class Dims:
    """An integer shape value (what ONNX computes with Shape, Gather, Concat, ...) held as a
    Python list of ints and graph scalars (`x.size(1)`), so that shape arithmetic stays live and
    reads as a person writes it: `x.reshape(batch, sequence, 4, 8)`. It becomes a tensor
    (`torch.tensor([batch, sequence])`) only where an op needs one."""

    items: list  # int | bool | fx.Node
    scalar: bool = False  # a 0-D value (one item) rather than 1-D
    dtype: torch.dtype = torch.int64

    @property
    def static(self) -> bool:
        return not any(isinstance(i, fx.Node) for i in self.items)


@dataclasses.dataclass
class ModuleSpec:
    """How a submodule is constructed: `cls(**kwargs)`, for the generated model.py."""

    cls: type
    kwargs: dict[str, Any]


class NodeContext:
    """What a converter sees of one ONNX node, and how it adds to the torch graph."""

    def __init__(self, builder: GraphBuilder, node: ir.Node):
        self.builder = builder
        self.node = node
        self.opset = builder.opset

    # --- reading the ONNX node -------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        a = self.node.attributes.get(name)
        if a is None:
            return default
        value = a.value
        if isinstance(value, (ir.Tensor, ir.TensorProtocol)):
            return value.numpy()
        if isinstance(value, (tuple, list)):
            return [_f32(v) for v in value]
        return _f32(value)

    @property
    def num_inputs(self) -> int:
        return len(self.node.inputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and self.node.inputs[i] is not None

    def value(self, i: int) -> ir.Value:
        return self.node.inputs[i]

    def const(self, i: int) -> np.ndarray | None:
        """The input's value if it is a constant (initializer or Constant), else None."""
        if not self.has_input(i):
            return None
        v = self.node.inputs[i]
        if v.is_graph_input():
            return None
        tensor = v.const_value
        return None if tensor is None else tensor.numpy()

    def ints(self, i: int) -> list[int] | None:
        c = self.const(i)
        return None if c is None else [int(x) for x in np.asarray(c).reshape(-1)]

    def ints_or_runtime(self, i: int):
        """Input i as a Python list when constant, else a graph value computing `.tolist()`
        (node tests feed axes, pads and sizes as inputs)."""
        c = self.ints(i)
        if c is not None:
            return c
        return self.builder.create("call_method", "tolist", (self.x(i),), {}, f"{self.value(i).name}_list")

    def dims(self, i: int) -> Dims | None:
        """Input i as Dims when it is a shape value or a small integer constant, else None."""
        if not self.has_input(i):
            return None
        held = self.builder.dims.get(self.node.inputs[i].name)
        if held is not None:
            return held
        c = self.const(i)
        if c is None or c.ndim > 1 or c.size > 64 or c.dtype.kind not in "iub":
            return None
        dtype = torch.from_numpy(np.zeros(0, c.dtype)).dtype
        return Dims([x.item() for x in c.reshape(-1)], scalar=c.ndim == 0, dtype=dtype)

    def is_dims(self, i: int) -> bool:
        """Whether input i is a shape value computed at run time (not a constant)."""
        return self.has_input(i) and self.node.inputs[i].name in self.builder.dims

    def sizes(self, i: int) -> list | None:
        """Input i as a list of ints and graph scalars (a 1-D shape value or constant), else None."""
        d = self.dims(i)
        return None if d is None or d.scalar else list(d.items)

    def dim(self, i: int, k: int):
        """Dim k of input i: an int where the graph fixes it, else `x.size(k)` (named after the
        ONNX dim, e.g. `batch`), live in the torch graph."""
        shape = self.node.inputs[i].shape
        if shape is not None and k < len(shape) and isinstance(shape[k], int):
            return shape[k]
        label = shape[k].value if shape is not None and k < len(shape) else None
        if label in self.builder.input_dims:  # a dim the source named (`batch`): read once
            return self.builder.size_of(*self.builder.input_dims[label], label)
        return self.builder.size_of(self.x(i), k, label)

    def shape(self, i: int) -> tuple | None:
        """Static shape of input i (ints, or None per unknown dim), or None if unknown."""
        v = self.node.inputs[i]
        if v is None or v.shape is None:
            return None
        return tuple(d if isinstance(d, int) else None for d in v.shape)

    def rank(self, i: int) -> int | None:
        s = self.shape(i)
        return None if s is None else len(s)

    def dtype(self, i: int) -> torch.dtype | None:
        v = self.node.inputs[i]
        return None if v is None or v.dtype is None else TORCH_DTYPES.get(v.dtype)

    def output_dtype(self, i: int = 0) -> torch.dtype | None:
        v = self.node.outputs[i]
        return None if v.dtype is None else TORCH_DTYPES.get(v.dtype)

    def output_used(self, i: int) -> bool:
        if i >= len(self.node.outputs):
            return False
        out = self.node.outputs[i]
        return bool(out.name) and (bool(out.uses()) or out.is_graph_output())

    def may_overwrite(self, i: int) -> bool:
        """Whether the layer may work in place on input i (`nn.ReLU(inplace=True)`), as
        hand-written networks do: saves allocating (and page-faulting) a fresh activation.

        True only when nothing else can see that tensor: it is made by a node known to return a
        fresh tensor (never a view of another), this node is its only reader, and it is no
        graph input or output.
        """
        if not self.has_input(i):
            return False
        v = self.node.inputs[i]
        producer = v.producer()
        return (producer is not None and producer.op_type in FRESH_OUTPUT_OPS and not producer.domain
                and producer.graph is self.node.graph  # not a subgraph's capture: a Loop reads it again
                and len(v.uses()) == 1 and not v.is_graph_output())

    # --- adding to the torch graph ---------------------------------------------------------
    def x(self, i: int) -> fx.Node | None:
        """The torch-graph value of input i (a constant becomes a buffer)."""
        if not self.has_input(i):
            return None
        return self.builder.value_of(self.node.inputs[i])

    def operand(self, i: int, other: int | None = None):
        """Input i as a Python number when it is a one-element constant that broadcasting
        lets us inline (reads better: `x * 0.5`), else as a graph value."""
        c = self.const(i)
        if c is not None and c.size == 1 and c.dtype.kind in "fiub":
            other_rank = self.rank(other) if other is not None else None
            if c.ndim == 0 or (other_rank is not None and c.ndim <= other_rank):
                return c.reshape(()).item()
        return self.x(i)

    def module(self, cls: type, params: dict[str, np.ndarray] | None = None, **kwargs) -> str:
        """Add `cls(**kwargs)` as a submodule named after the source layer; set its weights."""
        return self.builder.add_module(self.node, cls, kwargs, params or {})

    def call_module(self, cls: type, *args, params=None, **kwargs) -> fx.Node:
        """Call `cls(**kwargs)` (a new submodule, or the source's own one reused: a ReLU the
        source calls twice); the result is named after the layer (`layer1_0_conv1`)."""
        name = self.module(cls, params, **kwargs)
        var = name.replace(".", "_") if len(self.node.outputs) == 1 else self.out_name()
        return self.builder.create("call_module", name, args, {}, var)

    def call(self, fn, *args, **kwargs) -> fx.Node:
        return self.builder.create("call_function", fn, args, kwargs, self.out_name())

    def method(self, name: str, *args, **kwargs) -> fx.Node:
        return self.builder.create("call_method", name, args, kwargs, self.out_name())

    def split(self, node: fx.Node, n: int) -> tuple[fx.Node, ...]:
        """Turn a tuple-valued graph node into one node per ONNX output."""
        names = [o.name for o in self.node.outputs]
        return tuple(
            self.builder.create("call_function", operator.getitem, (node, k), {}, names[k] if k < len(names) else None)
            for k in range(n)
        )

    def out_name(self, k: int = 0) -> str | None:
        """The variable name of output k: the ONNX value's name, or for a TorchScript export's
        scoped names (`/layer1/layer1.0/Add_output_0`) the layer's (`layer1_0_add`)."""
        outs = self.node.outputs
        if k >= len(outs):
            return None
        name = outs[k].name
        if name and name.startswith("/"):
            scope = hierarchy.scope_path(name)
            op = name.rsplit("/", 1)[-1].split("_output")[0].lower()
            return f"{scope}_{op}" if scope else op
        return name


class GraphBuilder:
    def __init__(self, model: ir.Model):
        self.model = model
        self.opset = model.opset_imports.get("", 18)
        self.graph = fx.Graph()
        self.root = nn.Module()
        self.specs: dict[str, ModuleSpec] = {}
        self.containers: set[str] = set()  # dotted paths of the source's module containers
        self.buffers: dict[str, str] = {}  # onnx value name -> buffer attribute
        self.env: dict[str, fx.Node] = {}  # onnx value name -> fx node
        self.done: set[ir.Node] = set()  # nodes a converter did the work of (a Linear's bias Add)
        self.pending: dict[ir.Node, Any] = {}  # node -> what its converter emits (an attention core's end)
        self.masks: dict[str, fx.Node] = {}  # boolean mask -> its additive mask, made once for every layer
        self.values: dict[str, str] = {}  # onnx value name -> fx node name
        self.dims: dict[str, Dims] = {}  # onnx shape values held as Python lists (see Dims)
        self.nonneg: set[fx.Node] = set()  # graph scalars known >= 0 (sizes, their products)
        self._sizes: dict[tuple[fx.Node, int], fx.Node] = {}
        self.input_dims: dict[str, tuple[fx.Node, int]] = {}  # graph inputs' named dims
        self._used_names: set[str] = set()

    # --- names -------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name = provenance.python_name(base)
        candidate, k = name, 1
        while candidate in self._used_names or hasattr(nn.Module, candidate):
            k += 1
            candidate = f"{name}_{k}"
        self._used_names.add(candidate)
        return candidate

    # --- graph -------------------------------------------------------------------------------
    def create(self, op: str, target, args, kwargs, name: str | None) -> fx.Node:
        node = self.graph.create_node(op, target, tuple(args), dict(kwargs),
                                      name=provenance.python_name(name) if name else None)
        return node

    def size_of(self, x: fx.Node, k: int, label: str | None = None) -> fx.Node:
        """`x.size(k)`, once per tensor and dim."""
        if (x, k) not in self._sizes:
            name = label if isinstance(label, str) and label.isidentifier() else f"{x.name}_size{k}"
            node = self.create("call_method", "size", (x, k), {}, name)
            self._sizes[(x, k)] = node
            self.nonneg.add(node)
        return self._sizes[(x, k)]

    def value_of(self, value: ir.Value) -> fx.Node:
        if value.name in self.env:
            return self.env[value.name]
        held = self.dims.get(value.name)
        if held is not None:  # a shape value some op needs as a tensor
            items = held.items[0] if held.scalar else list(held.items)
            node = self.create("call_function", torch.tensor, (items,), {"dtype": held.dtype}, value.name)
            self.env[value.name] = node
            self.values[value.name] = node.name
            return node
        tensor = value.const_value
        if tensor is None:
            raise Unsupported(f"input {value.name!r} is produced by no node the exporter saw")
        attr = self.fresh(value.name)
        self.root.register_buffer(attr, _to_torch(tensor.numpy()))
        self.buffers[value.name] = attr
        node = self.graph.get_attr(attr)
        self.env[value.name] = node
        self.values[value.name] = node.name
        return node

    def module_name(self, onnx_node: ir.Node) -> str:
        """Where the node's layer lives: its source module's path (`layer1.0.conv1`, so that the
        source's state_dict keys load), or a fresh flat name when its records name no module."""
        path = hierarchy.module_path(onnx_node)
        if path:
            placed = self._place(path.split("."))
            if placed:
                return placed
        return self.fresh(provenance.source_of(onnx_node))

    def _place(self, parts: list[str]) -> str | None:
        """Create the containers on the way to `parts` and return a free dotted name there."""
        parent, prefix = self.root, []
        for seg in parts[:-1]:
            child = parent._modules.get(seg)
            if child is None:
                if prefix == [] and (seg in self._used_names or hasattr(nn.Module, seg)):
                    return None
                if hasattr(parent, seg):
                    return None
                child = nn.Module()
                parent.add_module(seg, child)
                self.containers.add(".".join(prefix + [seg]))
                if not prefix:
                    self._used_names.add(seg)
            elif ".".join(prefix + [seg]) not in self.containers:
                return None  # a layer, not a container: fall back to a flat name
            parent, prefix = child, prefix + [seg]
        last, k = parts[-1], 1
        while last in parent._modules or hasattr(parent, last) or (not prefix and last in self._used_names) \
                or ".".join(prefix + [last]) in self.containers:
            k += 1
            last = f"{parts[-1]}_{k}"
        if not prefix:
            self._used_names.add(last)
        return ".".join(prefix + [last])

    def add_module(self, onnx_node: ir.Node, cls, kwargs, params) -> str:
        path = hierarchy.module_path(onnx_node)
        spec = self.specs.get(path) if path else None
        if spec is not None and not params and spec.cls is cls and spec.kwargs == kwargs:
            return path  # the source's own stateless layer, called again (torchvision's relu)
        name = self.module_name(onnx_node)
        dtype = _float_dtype(params)
        if dtype is not None and dtype != torch.get_default_dtype():
            # built in the source's dtype (`nn.Linear(32, 32, dtype=torch.float16)`): a float32
            # layer would upcast half weights on load_state_dict and then reject half inputs
            kwargs = {**kwargs, "dtype": dtype}
        with torch.device("meta"):
            module = cls(**kwargs)
        for pname, param in list(module.named_parameters(recurse=False)):
            if pname not in params:
                raise Unsupported(f"{cls.__name__} needs its {pname!r} as a constant")
            setattr(module, pname, nn.Parameter(_to_torch(params[pname]).reshape(param.shape),
                                                requires_grad=param.requires_grad))
        for bname, buf in list(module.named_buffers(recurse=False)):
            if bname in params:
                module._buffers[bname] = _to_torch(params[bname]).reshape(buf.shape)
            elif bname == "num_batches_tracked":
                module._buffers[bname] = torch.tensor(0, dtype=torch.long)
            else:
                raise Unsupported(f"{cls.__name__} needs its {bname!r} as a constant")
        module.eval()
        *path, leaf = name.split(".")
        self.root.get_submodule(".".join(path)).add_module(leaf, module)
        self.specs[name] = ModuleSpec(cls, kwargs)
        return name


def build(model: ir.Model) -> fx.GraphModule:
    """Convert every node; raise UnsupportedError listing every node that cannot be (see convert.py)."""
    from .convert import build as build_graph

    return build_graph(model)


_FLOAT_NAMES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                "float64": torch.float64}


def _float_dtype(params: dict[str, np.ndarray]) -> torch.dtype | None:
    """The floating dtype of a layer's weights (None when it has no floating weight)."""
    for array in params.values():
        dtype = _FLOAT_NAMES.get(str(np.asarray(array).dtype))
        if dtype is not None:
            return dtype
    return None


def _f32(v):
    """ONNX float attributes are float32: give them their shortest float32 spelling, so that
    generated code reads `eps=1e-05`, not `eps=9.999999747378752e-06`."""
    return float(str(np.float32(v))) if isinstance(v, float) else v


def _to_torch(array: np.ndarray) -> torch.Tensor:
    """An owned, contiguous torch tensor: exactly one copy (the export must never share memory
    with the IR's weights, and a transposed view copied as it is would be copied again on save)."""
    array = np.asarray(array)
    if array.dtype.name == "bfloat16":  # ml_dtypes: torch reads its bits
        bits = np.array(array, order="C", copy=True).view(np.uint16).astype(np.int16)
        return torch.from_numpy(bits).view(torch.bfloat16)
    return torch.from_numpy(np.array(array, order="C", copy=True))
