"""Build a functional keras.Model from an ONNX graph laid out by the assign-nhwc pass.

Every ONNX value is held in the layout the pass assigned (`irbridge.physical`); a converter
asks for its inputs in the layout it needs (`ctx.x(i, perm)`) and only a mismatch costs a
`Permute` layer. Layers are named after the source layers.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import onnx_ir as ir

from ... import progress, provenance
from ...errors import UnsupportedError
from ...passes.assign_nhwc import physical_perm
from .given_weights import GivenWeights, build_failure, initializer_defaults
from .graph_reading import (  # noqa: F401 - converters import them here
    find_dense_nd,
    keeps_batch,
    same_dim,
)
from .graph_reading import shape_only as _shape_only
from .registry import Unsupported, lookup

# keras model -> how its interfaces relate to the ONNX graph (for verification)
INFO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# pattern finders run before the nodes are converted: fn(builder, graph) fills builder.fusions
FUSERS: list = []
_FLOATS = {"float16", "bfloat16", "float32", "float64"}
_LITERAL_MAX = 64  # constants up to this size (and integer/bool ones) live in a TensorOp's config


def fuser(fn):
    """Register a pattern finder: fn(builder, graph) maps the last node of each pattern it
    finds to a converter (`builder.fusions`) and adds the others to `builder.dropped`."""
    FUSERS.append(fn)
    return fn


class Held(tuple):
    """A converter's result held in a layout other than the one assign-nhwc gave the value:
    `Held(tensor, perm)` (the data is value.transpose(perm))."""

    def __new__(cls, tensor, perm):
        return super().__new__(cls, (tensor, tuple(perm)))


class KerasContext:
    def __init__(self, builder: KerasBuilder, node: ir.Node):
        self.b = builder
        self.node = node

    def attr(self, name: str, default: Any = None) -> Any:
        a = self.node.attributes.get(name)
        if a is None:
            return default
        v = a.value
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, (tuple, list)):
            return list(v)
        if isinstance(v, float):
            return float(str(np.float32(v)))
        return v

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and self.node.inputs[i] is not None

    def const(self, i: int) -> np.ndarray | None:
        if not self.has_input(i):
            return None
        v = self.node.inputs[i]
        return None if v.const_value is None or v.is_graph_input() else v.const_value.numpy()

    def shape(self, i: int) -> tuple | None:
        v = self.node.inputs[i]
        return None if v is None or v.shape is None else tuple(d if isinstance(d, int) else None for d in v.shape)

    def out_shape(self, k: int = 0) -> tuple | None:
        v = self.node.outputs[k]
        return None if v.shape is None else tuple(d if isinstance(d, int) else None for d in v.shape)

    def rank(self, i: int) -> int | None:
        s = self.shape(i)
        return None if s is None else len(s)

    def perm_in(self, i: int) -> tuple[int, ...]:
        """The layout input i is held in (identity when the pass left it in ONNX order)."""
        v = self.node.inputs[i]
        return physical_perm(v) or tuple(range(len(v.shape) if v.shape is not None else 0))

    def perm_out(self, k: int = 0) -> tuple[int, ...]:
        v = self.node.outputs[k]
        return physical_perm(v) or tuple(range(len(v.shape) if v.shape is not None else 0))

    def axis(self, logical: int, perm: tuple[int, ...]) -> int:
        """Where the logical ONNX axis sits in data held in `perm`."""
        return list(perm).index(logical % len(perm))

    def x(self, i: int, perm: tuple[int, ...] | None = None, order_only: bool = False):
        """Input i as a Keras tensor held in `perm` (default: the output's layout)."""
        if perm is None:
            perm = self.perm_out(0)
        return self.b.tensor(self.node.inputs[i], tuple(perm), order_only)

    def follower(self, op_types, output: ir.Value | None = None) -> ir.Node | None:
        """The one node reading `output` (default: output 0), if it is one of `op_types` and
        nothing else needs the value in between (a candidate to fuse into this layer)."""
        v = self.node.outputs[0] if output is None else output
        readers = {n for n, _ in v.uses()}
        if len(readers) != 1 or v.is_graph_output():
            return None
        n = next(iter(readers))
        return n if n.op_type in op_types and n.domain == "" else None

    def absorb(self, follower: ir.Node) -> None:
        """`follower` is computed by the layer being made: its output is this node's output."""
        self.b.absorbed[follower] = self.node.outputs[0]

    def fused_activation(self, output: ir.Value | None = None) -> str | None:
        """'relu' when a Relu follows and can be fused into the layer (Keras' activation=)."""
        relu = self.follower(("Relu",), output)
        if relu is None:
            return None
        self.absorb(relu)
        return "relu"

    def layer(self, cls, *inputs, weights=None, name_suffix: str = "", **kwargs):
        """Apply a new `cls(**kwargs)` layer named after the source layer; set its weights.

        A layer given its weights creates its variables from them: every `*_initializer` hands
        out the next array (Keras creates a layer's weights in `layer.weights` order), so each
        weight is copied into TF once, with no random fill only to be overwritten (VGG-16: 2 s)
        and no second copy by `set_weights`. The layer's default initializers are put back
        afterwards, so that its config (and a re-initialization) is as usual. Should a layer ask
        for weights in another order or shape, `set_weights` sets them after all.
        """
        name = self.b.fresh(provenance.source_of(self.node) + name_suffix)
        defaults = initializer_defaults(cls, kwargs) if weights is not None else {}
        out_dtype = self.dtype_name(self.node.outputs[0])
        if "dtype" not in kwargs and out_dtype in _FLOATS and out_dtype != "float32":
            kwargs["dtype"] = out_dtype  # a float16 model computes in float16, as in ONNX
        wdtype = kwargs.get("dtype", "float32") if isinstance(kwargs.get("dtype", "float32"), str) else "float32"
        arrays = [np.asarray(w, dtype=wdtype if np.asarray(w).dtype.kind == "f" else None)
                  for w in weights] if weights is not None else []
        given = GivenWeights(arrays)
        layer = cls(name=name, trainable=self.b.trainable, **kwargs, **{k: given for k in defaults})
        out = layer(inputs[0] if len(inputs) == 1 else list(inputs))
        if weights is not None:
            if not given.all_used(len(layer.weights)):
                layer.set_weights(arrays)
            for key, default in defaults.items():
                if hasattr(layer, key):
                    setattr(layer, key, self.b.keras.initializers.get(default))
        return out

    @staticmethod
    def dtype_name(v: ir.Value | None) -> str | None:
        if v is None or v.dtype is None:
            return None
        try:
            return "bfloat16" if v.dtype == ir.DataType.BFLOAT16 else v.dtype.numpy().name
        except (TypeError, ValueError, AttributeError):
            return None

    def tensor_op(self, op: str, attrs: dict | None = None, perm=None, inputs=None, broadcast=False, **kwargs):
        """A TensorOp layer computing `op` on the node's inputs (or `inputs`: indices, or None
        for an absent operand): run-time values fetched in `perm` (default: ONNX order),
        constants as literals (small or integer) or non-trainable weights; with `broadcast`
        (elementwise ops), constants are laid out in `perm` too."""
        from ...keras_tensor_layers import TensorOp

        idx = list(range(len(self.node.inputs))) if inputs is None else list(inputs)
        slots, live, consts, specs = [], [], [], []
        for i in idx:
            if i is None or not self.has_input(i):
                slots.append(None)
                continue
            c = self.const(i)
            if c is not None and broadcast and perm is not None and 0 < c.ndim <= len(perm):
                c = c.reshape((1,) * (len(perm) - c.ndim) + c.shape).transpose(perm)
            if c is None:
                rank = self.rank(i)
                if rank is None:
                    p = self.b.env[self.node.inputs[i].name][1] if self.node.inputs[i].name in self.b.env else ()
                else:
                    p = tuple(range(rank)) if perm is None or rank != len(perm) else perm
                live.append(self.x(i, p))
                slots.append("x")
            elif c.dtype.kind in "iub" and c.size <= 4096 or c.size <= _LITERAL_MAX:
                slots.append({"value": c.tolist(), "dtype": c.dtype.name})
            else:
                slots.append("c")
                consts.append(c.astype(np.uint8) if c.dtype == bool else c)
                specs.append([list(c.shape), c.dtype.name])
        if not live:
            raise Unsupported("every operand is a constant (nothing computed from the inputs)")
        name = self.b.fresh(provenance.source_of(self.node) + kwargs.pop("name_suffix", ""))
        known = self.out_shape(0) if len(self.node.outputs) == 1 else None
        if known is not None and perm is not None and len(perm) == len(known):
            known = tuple(known[p] for p in perm)
        layer = TensorOp(op=op, attrs=attrs or {}, slots=slots, constants=specs, name=name,
                         trainable=self.b.trainable, known=None if known is None else list(known), **kwargs)
        out = layer(live)
        if consts:
            layer.set_weights(consts)
        return out


class KerasBuilder:
    def __init__(self, model: ir.Model):
        import keras

        self.keras = keras
        self.model = model
        self.opset = model.opset_imports.get("", 18)
        self.env: dict[str, tuple] = {}  # onnx value name -> (keras tensor, perm)
        self.names: set[str] = set()
        self.permutes = 0
        self.trainable = True
        self.absorbed: dict[ir.Node, ir.Value] = {}  # fused follower -> the value it takes over
        # MatMul -> (x, the Reshape back) of a Dense over the last axis of x (tf2onnx's Tensordot)
        self.dense_nd: dict[ir.Node, tuple[ir.Value, ir.Node]] = {}
        self.anchor = None  # the first Keras input: what constant tensors are computed from
        self.dropped: set = set()  # nodes a converter does the work of (the Tensordot's flattening Reshape)
        self.reshapes: dict = {}  # Reshape -> the Keras target_shape (batch excluded) found for it
        self.fusions: dict = {}  # last node of a recognised pattern -> the converter doing all of it

    def fresh(self, base: str) -> str:
        name = provenance.python_name(base)
        candidate, k = name, 1
        while candidate in self.names:
            k += 1
            candidate = f"{name}_{k}"
        self.names.add(candidate)
        return candidate

    def constant(self, value: ir.Value):
        """A constant that a layer needs as a tensor (a Reshape or Resize of a stored table, which
        the graph computes at run time: DINOv2's position embeddings, BEiT's relative position
        bias): a TensorOp giving the stored array (non-trainable), called on the first input."""
        from ...keras_tensor_layers import TensorOp

        array = value.const_value.numpy()
        spec = [list(array.shape), array.dtype.name]
        layer = TensorOp(op="constant", slots=["x", "c"], constants=[spec], trainable=False,
                         name=self.fresh(f"{value.name}_constant"))
        out = layer(self.anchor)
        layer.set_weights([array.astype(np.uint8) if array.dtype == bool else array])
        return out

    def _reshape_for_unit_axes(self, value: ir.Value, t, have, perm):
        """A Reshape where the layout change only moves size-1 axes (the element order stays),
        if Keras can state the target: at most one unknown size beyond the batch."""
        if value.shape is None:
            return None
        big = [a for a in range(len(perm)) if value.shape[a] != 1]
        if [a for a in have if a in big] != [a for a in perm if a in big]:
            return None
        target = [value.shape[a] if isinstance(value.shape[a], int) else -1 for a in perm[1:]]
        if target.count(-1) > 1:
            return None
        return self.keras.layers.Reshape(tuple(target), name=self.fresh(f"{value.name}_reshape"))(t)

    def tensor(self, value: ir.Value, perm: tuple[int, ...], order_only: bool = False):
        """`value` held in `perm`; with order_only (for Flatten/Reshape, which read only the
        element order), any layout that differs only in where size-1 axes sit will do."""
        if value.name not in self.env and value.const_value is not None and self.anchor is not None:
            self.env[value.name] = (self.constant(value), tuple(range(len(value.const_value.shape))))
        if value.name not in self.env:
            raise Unsupported(f"input {value.name!r} is a constant or comes from an unconverted node")
        t, have = self.env[value.name]
        if tuple(have) == tuple(perm):
            return t
        if order_only and value.shape is not None:
            big = [a for a in range(len(perm)) if value.shape[a] != 1]
            if [a for a in have if a in big] == [a for a in perm if a in big]:
                return t
        key = f"{value.name}@{perm}"
        if key in self.env:
            return self.env[key][0]
        r = [list(have).index(p) for p in perm]  # t.transpose(r) is the value held in `perm`
        if r[0] != 0:
            raise Unsupported("a layout change that moves the batch axis")
        moved = self._reshape_for_unit_axes(value, t, have, perm)
        if moved is not None:  # wav2vec2's (B, 1, T) samples read channels-last by a Conv1D
            self.env[key] = (moved, perm)
            return moved
        self.permutes += 1
        layer = self.keras.layers.Permute(tuple(r[1:]), name=self.fresh(f"{value.name}_permute"))
        out = layer(t)
        self.env[key] = (out, perm)
        return out


def build(model: ir.Model, keep_nchw_io: bool = False, trainable: bool = True):
    import keras

    b = KerasBuilder(model)
    b.trainable = trainable
    graph = model.graph
    inputs = []
    io_in = []
    for v in graph.inputs:
        if v.name in graph.initializers:
            continue
        dtype = KerasContext.dtype_name(v) or "float32"
        if v.dtype is not None and dtype not in _FLOATS | {"int64", "int32", "int16", "int8", "uint8",
                                                             "uint16", "uint32", "uint64", "bool"}:
            raise UnsupportedError(f"input {v.name!r} is {v.dtype.name.lower()}, which Keras inputs "
                                   "cannot be", nodes=[v.name])
        if v.shape is None:
            raise UnsupportedError(f"input {v.name!r} has no shape; give one with --input NAME:D1,D2,...",
                                   nodes=[v.name])
        perm = physical_perm(v) or tuple(range(len(v.shape)))
        if perm and perm[0] != 0:
            raise UnsupportedError(f"input {v.name!r}: a layout that moves the batch axis", nodes=[v.name])
        # free dims stay free: None in keras.Input (the batch is always free in Keras)
        shape = [d if isinstance(d, int) else None for d in (v.shape[p] for p in perm)][1:]
        t = keras.Input(shape=tuple(shape), name=b.fresh(v.name), dtype=dtype)
        inputs.append(t)
        b.env[v.name] = (t, perm)
        io_in.append((v.name, perm))
    b.anchor = inputs[0] if inputs else None
    problems = []
    tick = progress.current()
    tick.stage("building Keras layers", total=len(graph))
    find_dense_nd(b, graph)
    lookup("Identity", 1)  # loads the converter modules, which register their pattern finders
    for find in FUSERS:
        find(b, graph)
    shape_only = _shape_only(graph, b.dropped | set(b.absorbed) | set(b.reshapes))
    for node in graph:
        tick.advance()
        if node in shape_only or node in b.dropped:  # e.g. live shape arithmetic only a Reshape reads
            continue
        if node in b.absorbed:  # fused into the layer before it (e.g. Conv2D(activation="relu"))
            if b.absorbed[node].name in b.env:
                b.env[node.outputs[0].name] = b.env[b.absorbed[node].name]
            continue
        fn = b.fusions.get(node) or lookup(node.op_type, b.opset if not node.domain else 1, node.domain)
        why = None if fn is not None else "no Keras converter for this op"
        if fn is not None:
            try:
                result = fn(KerasContext(b, node))
                results = result if isinstance(result, (tuple, list)) and not isinstance(result, Held) \
                    else (result,)
                for k, (out, t) in enumerate(zip(node.outputs, results)):
                    b.env[out.name] = tuple(t) if isinstance(t, Held) else (t, KerasContext(b, node).perm_out(k))
                continue
            except Unsupported as e:
                why = str(e)
            except (ValueError, TypeError, NotImplementedError) as e:
                # Keras refused the layer while building it (e.g. keras.ops given a run-time value
                # where it needs a constant): this node cannot be converted; say why, go on
                why = build_failure(KerasContext(b, node), e, _first_line(e))
        problems.append((node, why))
    if problems:
        lines = [f"{len(problems)} node(s) cannot be converted to Keras:"]
        for node, why in problems:
            src = node.metadata_props.get(provenance.SOURCE, node.name)
            lines.append(f"  - {node.name}" + (f" (layer {src})" if src != node.name else "") + f": {node.op_type}: {why}")
        lines.append("Supported ops are listed by `irbridge ops --target keras`.")
        raise UnsupportedError("\n".join(lines), nodes=[n.name for n, _ in problems])
    outputs, io_out = [], []
    for v in graph.outputs:
        if v.name not in b.env:
            raise UnsupportedError(f"output {v.name!r} is a constant of the graph; a Keras model's "
                                   "outputs must be computed from its inputs", nodes=[v.name])
        t, perm = b.env[v.name]
        if keep_nchw_io and list(perm) != sorted(perm):
            perm = tuple(sorted(perm))
            t = b.tensor(v, perm)
        outputs.append(t)
        io_out.append((v.name, perm))
    km = keras.Model(inputs=inputs if len(inputs) > 1 else inputs[0], outputs=outputs if len(outputs) > 1 else outputs[0],
                     name=provenance.python_name(graph.name or "model"))
    from ...verify import layer_outputs

    # a tensor several ONNX values share (a Conv with its fused Relu) is the last one's value
    last: dict[int, str] = {}
    for name, (t, _) in b.env.items():
        if "@" not in name:
            last[id(t)] = name
    values = {name: b.env[name] for name in last.values()}
    # a fused follower's output is its layer's output: the Conv2D named conv1 ends in the Relu
    fused = {provenance.source_of(f): provenance.source_of(p.producer()) for f, p in b.absorbed.items()}
    layers = {}
    for layer, value in layer_outputs(model).items():
        if value in values:
            layers[fused.get(layer, layer)] = value
    INFO[km] = {"inputs": io_in, "outputs": io_out, "permutes": b.permutes, "values": values,
                "layers": layers}
    return km


def _first_line(e: Exception) -> str:
    """Keras wraps layer errors in a banner; the line that says what went wrong."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "Error encountered" in ln or ln.startswith("Exception encountered"):
            continue
        return ln.replace("\x1b[1m", "").replace("\x1b[0m", "")[:200]
    return type(e).__name__
