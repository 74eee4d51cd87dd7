"""Keras 3 importer: a keras.Model or a .keras file -> ONNX through tf2onnx.

The weights do not go through tf2onnx. The model is traced as a function of its inputs *and*
its weights (`model.stateless_call`), so that tf2onnx converts the architecture alone, with each
weight a graph input; those inputs then become initializers holding the Keras variables' values.
Freezing the weights into the TF graph instead (`tf2onnx.convert.from_keras`) copies them at
every step of TF's and tf2onnx's optimizers: ResNet-50 (100 MB of weights) peaked at 6.9 GB and
took 23 s, VGG-16 ran out of 24 GB; this way ResNet-50 converts in 7 s, 150 MB above baseline.

    before (from_keras):  Conv(x, Constant<HWIO kernel, frozen copy>) ...
    after:                Conv(x, Transpose(block1_conv1.kernel)) ...   (a graph input, then an
                          initializer; fold-constants turns the Transpose into an OIHW weight)

Provenance comes back from tf2onnx's node names (`conv1_1/convolution` is layer `conv1`);
nodes tf2onnx adds on its own (layout Transposes, shape arithmetic) take the layer of the node
they feed. The imported graph is checked against Keras itself on seeded inputs.
"""

from __future__ import annotations

import inspect
import os
import re

import numpy as np
import onnx_ir as ir

from .. import dims, provenance
from ..errors import InputError, UnsupportedError
from . import tf_graphdef
from .keras_inputs import (  # noqa: F401 - FIXED_BY_INPUTS, _given_inputs, _is_array, _declared_inputs: re-exported
    FIXED_BY_INPUTS,
    _call_args,
    _declared_inputs,
    _given_inputs,
    _input_specs,
    _is_array,
    _is_functional,
)
from .source_check import check_against_source
from .tf_common import quiet_tf


def load(source, weights=None, inputs=None, trust_code: bool = False) -> ir.Model:
    if weights is not None:
        raise InputError("a Keras model holds its own weights; drop the WEIGHTS argument "
                         "(bare weight files bind onto an architecture with `irbridge bind`).")
    with quiet_tf():
        import keras
        import tensorflow as tf
        import tf2onnx

        km = source if isinstance(source, keras.Model) else _load_file(os.fspath(source), trust_code)
        if isinstance(km, keras.Sequential):
            km = _as_functional(km, keras)
        specs, fixed = _input_specs(km, inputs, tf)
        km = _built(km, specs, _given_inputs(inputs))
        try:
            model = _convert_without_weights(km, specs, tf, tf2onnx)
        except (InputError, UnsupportedError):
            raise
        except Exception as e:
            raise crash_error(km, e) from e
    name_free_dims(model, fixed)
    tag_keras_layers(model, _layer_types(km))
    check_against_keras(model, km)
    return model


def _convert_without_weights(km, specs, tf, tf2onnx) -> ir.Model:
    """tf2onnx on `km` traced with its weights as inputs; then the weights as initializers."""
    variables = list(km.trainable_variables) + list(km.non_trainable_variables)
    n_trainable, n_inputs = len(km.trainable_variables), len(specs)
    names = _weight_names(variables)
    outputs = _output_names(km)
    params = inspect.signature(km.call).parameters
    mode = {"training": False} if "training" in params or any(
        p.kind == p.VAR_KEYWORD for p in params.values()) else {}  # as Keras's own __call__ decides

    def call(*args):
        xs, weights = args[:n_inputs], args[n_inputs:]
        y, _ = km.stateless_call(list(weights[:n_trainable]), list(weights[n_trainable:]),
                                 *_call_args(km, xs), **mode)
        ys = y if isinstance(y, (list, tuple)) else [y]
        return dict(zip(outputs, ys)) if len(outputs) == len(ys) else y

    weight_specs = [tf.TensorSpec(v.shape, v.dtype, name=name) for v, name in zip(variables, names)]
    concrete = tf.function(call).get_concrete_function(*specs, *weight_specs)
    placeholders = [t for t in concrete.inputs if t.dtype != tf.resource]
    data = [t.name for t in placeholders[:n_inputs]]
    weights = {t.name.split(":")[0]: np.asarray(v.numpy())
               for t, v in zip(placeholders[n_inputs:n_inputs + len(variables)], variables)}
    rename = tf_graphdef.structured_renames(concrete, data)
    layers = _layer_types(km)

    def layer_of(node: str) -> str | None:
        layer = _layer_of(node, layers)
        return f"{layer} ({layers[layer]})" if layer else None

    model = tf_graphdef.concrete_to_onnx(concrete, data, rename, values=weights, where=f"Keras model {km.name!r}",
                                         layer_of=layer_of)
    graph = model.graph
    order = {name: i for i, name in enumerate(outputs)}  # TF returns a dict's entries sorted by key
    ordered = sorted(graph.outputs, key=lambda o: order.get(o.name, len(order)))
    graph.outputs.clear()
    graph.outputs.extend(ordered)
    return model


def _layer_types(km) -> dict[str, str]:
    return {layer.name: type(layer).__name__ for layer in km.layers}


def crash_error(km, e: Exception) -> UnsupportedError:
    """An exception from inside TF or tf2onnx as an UnsupportedError naming the Keras layer
    its text mentions (a TF tensor such as `normalization_1/Sub/y:0` is layer `normalization`)."""
    text = str(e)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    layers = _layer_types(km)
    at = None
    for token in re.findall(r"[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-:]+)+", text):
        at = _layer_of(token, layers)
        if at is not None:
            break
    where = f" at layer {at!r} ({layers[at]})" if at else ""
    return UnsupportedError(f"tf2onnx could not convert Keras model {km.name!r}{where}: "
                            f"{type(e).__name__}: {first}", nodes=[at] if at else ())


def fresh_copy(model):
    """A new model of the same architecture: Keras's clone, or for a subclassed model whose
    config cannot rebuild it, its class called without arguments."""
    import keras

    try:
        return keras.models.clone_model(model)
    except Exception as first:  # noqa: BLE001 - Keras raises TypeError/ValueError/NotImplementedError
        try:
            return type(model)()
        except TypeError:
            raise InputError(f"cannot make a copy of Keras model {model.name!r} ({type(model).__name__}) to "
                             f"build apart from yours: {str(first).splitlines()[0]}; give the class a "
                             "get_config/from_config or a constructor without arguments, or call the "
                             "model once yourself") from first


def _built(km, specs, given):
    """`km` built: as it is when it is, else a copy of it (the user's model is never changed)
    called once on the example inputs (zeros of the given shapes, a free batch 1)."""
    if km.built and (km.weights or _is_functional(km)):  # (Model.build() alone marks it built, with no weights)
        return km
    copy = fresh_copy(km)
    xs = [np.asarray(v) if _is_array(v) else None for _, v in given or []]
    xs = [x if x is not None else np.zeros([1 if d is None else d for d in s.shape], s.dtype.as_numpy_dtype)
          for x, s in zip(xs, specs)]
    copy(*_call_args(copy, xs), training=False)
    return copy


def _weight_names(variables) -> list[str]:
    """TF-legal, unique input names after the variables' paths: `block1_conv1/kernel` ->
    `block1_conv1.kernel`."""
    seen: set = set()
    return [tf_graphdef.weight_name(getattr(v, "path", None) or v.name or f"weight_{i}", seen)
            for i, v in enumerate(variables)]


def _output_names(km) -> list[str]:
    """The model's output names, as Keras knows them (none for a subclassed model: tf2onnx
    names its outputs then)."""
    try:
        names = list(getattr(km, "output_names", None) or [])
        if not names:
            outs = km.outputs if isinstance(km.outputs, (list, tuple)) else [km.outputs]
            names = [getattr(o, "name", f"output_{i}").split(":")[0] for i, o in enumerate(outs)]
    except (AttributeError, ValueError):
        return []
    return names


def _load_file(path: str, trust_code: bool):
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not trust_code)
    except Exception as e:  # keras raises ValueError/TypeError with the layer at fault
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "safe_mode" in str(e) or "Lambda" in str(e) or "lambda" in str(e):
            raise UnsupportedError(
                f"{path}: the model holds code (a Lambda layer or a custom object), which irbridge "
                f"does not run by default: {text}. Pass --trust-code if you trust the file.") from e
        raise InputError(f"{path}: not a loadable .keras model ({type(e).__name__}: {text}).") from e


def _as_functional(seq, keras):
    """The same layers (and weights) wired as a functional model: tf2onnx cannot trace a
    Keras 3 Sequential model's inputs."""
    inp = keras.Input(seq.inputs[0].shape[1:], dtype=seq.inputs[0].dtype, name="input")
    x = inp
    for layer in seq.layers:
        x = layer(x)
    return keras.Model(inp, x, name=seq.name)


UNKNOWN_DIM = re.compile(r"^unk__\d+$")


def name_free_dims(model: ir.Model, fixed=()) -> None:
    """Give the graph inputs' free dims readable names (tf2onnx calls them `unk__N`): `batch`
    at axis 0, `<input>_dim<k>` elsewhere; the outputs' unknown dims are left for shape
    inference to name from them. Record the dims fixed on the way in (irbridge.dims)."""
    for v in dims.graph_inputs(model):
        if v.shape is not None:
            v.shape = ir.Shape([d if isinstance(d, int) else ("batch" if axis == 0 else f"{v.name}_dim{axis}")
                                for axis, d in enumerate(v.shape)])
    for v in model.graph.outputs:
        if v.shape is not None:
            v.shape = ir.Shape([None if not isinstance(d, int) and UNKNOWN_DIM.match(str(d.value or ""))
                                else d for d in v.shape])
    for name, axis, size, why in fixed:
        dims.fix(model, name, axis, size, why)


def tag_keras_layers(model: ir.Model, layers: dict[str, str]) -> None:
    """Set irbridge.source/source_op from tf2onnx's scoped node names."""
    for node in model.graph:
        layer = _layer_of(node.name, layers)
        if layer is not None:
            node.metadata_props[provenance.SOURCE] = layer
            node.metadata_props[provenance.SOURCE_OP] = layers[layer]
    for node in reversed(list(model.graph)):  # tf2onnx's own nodes join the layer they feed
        if provenance.SOURCE in node.metadata_props:
            continue
        for out in node.outputs:
            reader = next((n for n, _ in out.uses() if provenance.SOURCE in n.metadata_props), None)
            if reader is not None:
                provenance.copy_provenance(reader, node)
                break


def _layer_of(node_name: str, layers: dict[str, str]) -> str | None:
    for part in node_name.split("/"):
        if part in layers:
            return part
        stripped = re.sub(r"_\d+$", "", part)  # Keras 3 scopes layer `conv1` as `conv1_1`
        if stripped in layers:
            return stripped
    return None


def check_against_keras(model: ir.Model, km) -> None:
    """The imported graph must compute what Keras computes (DESIGN.md §1: importers are
    checked against the source framework where it is installed)."""
    names = [v.name for v in model.graph.outputs]

    def run(xs):
        out = km(*_call_args(km, xs), training=False)
        if isinstance(out, dict) and set(names) <= set(out):  # Keras's order is not the graph's
            return [out[n] for n in names]
        return out

    check_against_source(model, "keras", run)

