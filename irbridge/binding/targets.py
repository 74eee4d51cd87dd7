"""Architectures weights are bound onto: a Keras model, a PyTorch module, or any ONNX graph.

Each target lists its layers' weight slots in canonical terms (layouts.Slot) and applies bound
canonical arrays to a copy of itself, converting them to its own storage layout. The source
object is never changed.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx_ir as ir

from .. import provenance
from .layouts import Slot


class KerasTarget:
    """A keras.Model: slots from its layers' variables; binding sets them on a clone."""

    framework = "keras"

    def __init__(self, model, inputs=None):
        self.model = model
        self.flatten: dict[str, tuple] = {}
        if not _is_functional(model):  # subclassed: built from `inputs` if need be, flattens from its graph
            if not model.built or inputs is not None:
                self.model = _built_copy(model, inputs)  # the user's model is never changed
            self.flatten = _traced_flattens(self.model)

    def layers(self) -> list[tuple[str, list[Slot]]]:
        out = []
        for layer in _keras_layers(self.model):
            slots = []
            cls = type(layer).__name__
            for var in layer.weights:
                short = var.path.rsplit("/", 1)[-1]
                shape = tuple(var.shape)
                role = _keras_role(short)
                if cls in ("Conv2D", "Conv1D", "Conv3D") and role == "weight":
                    slots.append(Slot(layer.name, role, "conv", (shape[-1], shape[-2], *shape[:-2]), var.path))
                elif cls == "DepthwiseConv2D" and role == "weight":
                    slots.append(Slot(layer.name, role, "depthwise", (shape[2] * shape[3], 1, shape[0], shape[1]),
                                      var.path))
                elif cls == "Dense" and role == "weight":
                    flatten = _keras_flatten(layer) or self.flatten.get(layer.name)
                    slots.append(Slot(layer.name, role, "dense", shape[::-1], var.path, flatten))
                else:
                    slots.append(Slot(layer.name, role, "vector", shape, var.path))
            if slots:
                out.append((layer.name, slots))
        return out

    def stored_layout(self, slot: Slot) -> str:
        return {"conv": "HWIO", "depthwise": "HWCM", "dense": "IO"}.get(slot.kind, "")

    def apply(self, bound: dict[str, np.ndarray]):
        from ..importers.keras_model import fresh_copy


        clone = fresh_copy(self.model)
        if not clone.built:  # a subclassed model made anew: built as the original was
            clone(*_example_call(self.model), training=False)
        clone.set_weights(self.model.get_weights())
        for original, copied in zip(_keras_layers(self.model), _keras_layers(clone)):
            for var, new in zip(original.weights, copied.weights):
                if var.path in bound:
                    new.assign(bound[var.path].astype(np.float32))
        return clone

    def store(self, slot: Slot, canonical: np.ndarray) -> np.ndarray:
        if slot.kind == "conv":
            return canonical.transpose(*range(2, canonical.ndim), 1, 0)
        if slot.kind == "depthwise":
            kh, kw = canonical.shape[2:]
            c = canonical.shape[0] // self._multiplier(slot)
            return canonical.reshape(c, -1, kh, kw).transpose(2, 3, 0, 1)
        if slot.kind == "dense":
            return canonical.T
        return canonical

    def _multiplier(self, slot: Slot) -> int:
        layer = next(ly for ly in _keras_layers(self.model) if ly.name == slot.layer)
        return int(layer.depth_multiplier)


def _is_functional(model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):  # a subclassed model has no Input layers
        return False


def _built_copy(model, inputs):
    """A clone of a subclassed Keras model, built by calling it on `inputs` (example arrays, or
    zeros of the given shapes: a free batch is 1 there)."""

    from ..errors import InputError
    from ..importers.keras_model import _call_args, _given_inputs, _is_array, fresh_copy

    given = _given_inputs(inputs)
    if given is None:
        raise InputError(f"Keras model {model.name!r} is subclassed and has never been built or called, so "
                         "its weights do not exist yet: call it once, or pass example arrays inputs=(x,) "
                         "or shapes inputs={'x': (1, 224, 224, 3)}")
    xs = []
    for name, v in given:
        if _is_array(v):
            xs.append(np.asarray(v))
            continue
        if any(d is None for d in v[1:]):
            raise InputError(f"inputs= shape {list(v)} for {name or 'the input'}: building the model needs "
                             "every size but the batch")
        xs.append(np.zeros([1 if d is None else int(d) for d in v], np.float32))
    clone = fresh_copy(model)
    clone(*_call_args(clone, xs), training=False)
    clone._irbridge_example = [np.zeros_like(x[:1]) for x in xs]
    if model.built and len(model.weights) == len(clone.weights):
        clone.set_weights(model.get_weights())
    return clone


def _example_call(model) -> tuple:
    """Arguments that build a fresh copy of a built subclassed model as it was built."""
    from ..importers.keras_model import _call_args, _declared_inputs

    example = getattr(model, "_irbridge_example", None)
    if example is None:
        declared = _declared_inputs(model) or []
        example = [np.zeros([1 if d is None else d for d in shape], np.float32) for _, shape, _ in declared]
    return _call_args(model, example)


def _traced_flattens(model) -> dict[str, tuple]:
    """flatten_reads of a subclassed model's imported graph (Keras knows no layer's input
    there), or nothing when it cannot be traced."""
    from onnx_ir.passes.common import ShapeInferencePass

    from ..errors import IrbridgeError
    from ..importers.keras_model import load

    try:
        graph = load(model)
        ShapeInferencePass()(graph)
    except IrbridgeError:
        return {}
    return flatten_reads(graph)


def _keras_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model
            yield from _keras_layers(layer)
        else:
            yield layer


def _keras_role(short: str) -> str:
    from .sources import ROLES

    return ROLES.get(short.lower(), short)


def _keras_flatten(dense) -> tuple | None:
    """((C, H, W), order) when the Dense reads a Flatten of a 4-D tensor (order: HWC, Keras's)."""
    try:
        producer = dense.input._keras_history.operation
    except (AttributeError, ValueError):
        return None
    if type(producer).__name__ != "Flatten":
        return None
    shape = tuple(producer.input.shape)
    if len(shape) != 4:
        return None
    if getattr(producer, "data_format", "channels_last") == "channels_first":
        return (shape[1], shape[2], shape[3]), "CHW"
    return (shape[3], shape[1], shape[2]), "HWC"


class TorchTarget:
    """A torch.nn.Module: slots from its state_dict; binding loads them into a deep copy. Which
    Linear follows a flatten is read from the module's ONNX export (needs `inputs`)."""

    framework = "torch"

    def __init__(self, module, inputs=None):
        self.module = module
        self.flatten: dict[str, tuple] = {}
        self.flatten_known = inputs is not None
        if inputs is not None:
            from ..importers import load

            self.flatten = flatten_reads(load(module, inputs=inputs))

    def layers(self) -> list[tuple[str, list[Slot]]]:
        import torch.nn as nn

        out = []
        for name, mod in self.module.named_modules():
            params = [(k, v) for k, v in mod.named_parameters(recurse=False)] + \
                     [(k, v) for k, v in mod.named_buffers(recurse=False) if k != "num_batches_tracked"]
            slots = []
            for short, tensor in params:
                key = f"{name}.{short}" if name else short
                shape = tuple(tensor.shape)
                if isinstance(mod, nn.modules.conv._ConvNd) and short == "weight" and \
                        not isinstance(mod, nn.modules.conv._ConvTransposeNd):
                    depthwise = mod.groups > 1 and shape[1] == 1 and mod.groups == mod.in_channels
                    slots.append(Slot(name, "weight", "depthwise" if depthwise else "conv", shape, key))
                elif isinstance(mod, nn.Linear) and short == "weight":
                    slots.append(Slot(name, "weight", "dense", shape, key, self.flatten.get(name)))
                elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
                    role = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "var"}[short]
                    slots.append(Slot(name, role, "vector", shape, key))
                else:
                    slots.append(Slot(name, "weight" if short == "weight" else short, "vector", shape, key))
            if slots:
                out.append((name, slots))
        return out

    def stored_layout(self, slot: Slot) -> str:
        return {"conv": "OIHW", "depthwise": "OIHW", "dense": "OI"}.get(slot.kind, "")

    def store(self, slot: Slot, canonical: np.ndarray) -> np.ndarray:
        return canonical

    def apply(self, bound: dict[str, np.ndarray]):
        import torch

        clone = copy.deepcopy(self.module)
        state = clone.state_dict()
        for key, array in bound.items():
            state[key] = torch.from_numpy(np.ascontiguousarray(array)).to(state[key].dtype)
        clone.load_state_dict(state)
        return clone


class OnnxTarget:
    """Any model irbridge loads, as its canonical ONNX graph: slots are the initializers that
    Conv, Gemm/MatMul, BatchNormalization and PRelu read, grouped by source layer."""

    framework = "onnx"

    def __init__(self, model: ir.Model):
        self.model = model
        self.flatten = flatten_reads(model)
        self._transposed: set[str] = set()  # dense weights stored (in, out)

    def layers(self) -> list[tuple[str, list[Slot]]]:
        out: dict[str, list[Slot]] = {}
        seen = set()
        for node in self.model.graph:
            layer = node.metadata_props.get(provenance.SOURCE) or node.name
            for i, v in enumerate(node.inputs):
                if v is None or v.const_value is None or v.name in seen or v.name not in self.model.graph.initializers:
                    continue
                slot = self._slot(node, i, v, layer)
                if slot is not None:
                    seen.add(v.name)
                    out.setdefault(layer, []).append(slot)
        return list(out.items())

    def _slot(self, node, i, v, layer) -> Slot | None:
        shape = tuple(v.const_value.shape)
        op = node.op_type
        if op == "Conv" and i == 1:
            group = node.attributes["group"].value if "group" in node.attributes else 1
            return Slot(layer, "weight", "depthwise" if group > 1 and shape[1] == 1 else "conv", shape, v.name)
        if op in ("Gemm", "MatMul") and i == 1 and len(shape) == 2:
            trans_b = op == "Gemm" and "transB" in node.attributes and node.attributes["transB"].value
            if not trans_b:
                self._transposed.add(v.name)
            return Slot(layer, "weight", "dense", shape if trans_b else shape[::-1], v.name, self.flatten.get(layer))
        if op == "BatchNormalization" and 1 <= i <= 4:
            return Slot(layer, ("gamma", "beta", "mean", "var")[i - 1], "vector", shape, v.name)
        if (op in ("Conv", "Gemm") and i == 2) or op == "Add":
            return Slot(layer, "bias", "vector", shape, v.name)
        if op == "PRelu" and i == 1:
            return Slot(layer, "slope", "vector", shape, v.name)
        return None

    def stored_layout(self, slot: Slot) -> str:
        if slot.kind == "dense":
            return "IO" if slot.target in self._transposed else "OI"
        return {"conv": "OIHW", "depthwise": "OIHW"}.get(slot.kind, "")

    def store(self, slot: Slot, canonical: np.ndarray) -> np.ndarray:
        return canonical.T if slot.kind == "dense" and slot.target in self._transposed else canonical

    def apply(self, bound: dict[str, np.ndarray]) -> ir.Model:
        clone = self.model.clone()
        for name, array in bound.items():
            clone.graph.initializers[name].const_value = ir.Tensor(
                np.ascontiguousarray(array, dtype=self.model.graph.initializers[name].const_value.numpy().dtype),
                name=name)
        return clone


def flatten_reads(model: ir.Model) -> dict[str, tuple]:
    """{layer: ((C, H, W), order)} for each Gemm/MatMul layer reading a flattened 4-D tensor:
    order HWC when the graph transposes to channels-last before flattening, else CHW."""
    out = {}
    for node in model.graph:
        if node.op_type not in ("Gemm", "MatMul") or not node.inputs or node.inputs[0] is None:
            continue
        producer = node.inputs[0].producer()
        if producer is None or producer.op_type not in ("Flatten", "Reshape"):
            continue
        src = producer.inputs[0]
        order = "CHW"
        before = src.producer()
        if before is not None and before.op_type == "Transpose" and \
                list(before.attributes["perm"].value) == [0, 2, 3, 1]:
            src, order = before.inputs[0], "HWC"
        if src.shape is None or len(src.shape) != 4 or not all(isinstance(d, int) for d in src.shape[1:]):
            continue
        layer = node.metadata_props.get(provenance.SOURCE) or node.name
        out[layer] = (tuple(src.shape[1:]), order)
    return out
