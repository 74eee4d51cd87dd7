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

from .. import provenance
from ..errors import InputError, UnsupportedError, VerificationError
from .tf_common import quiet_tf, tf2onnx_opset


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
        specs = _input_specs(km, inputs, tf)
        try:
            model = _convert_without_weights(km, specs, tf, tf2onnx)
        except Exception as e:
            raise UnsupportedError(f"tf2onnx could not convert Keras model {km.name!r}: "
                                   f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    tag_keras_layers(model, {layer.name: type(layer).__name__ for layer in km.layers})
    check_against_keras(model, km, specs)
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
                                 xs[0] if n_inputs == 1 else list(xs), **mode)
        ys = y if isinstance(y, (list, tuple)) else [y]
        return dict(zip(outputs, ys)) if len(outputs) == len(ys) else y

    weight_specs = [tf.TensorSpec(v.shape, v.dtype, name=name) for v, name in zip(variables, names)]
    proto, _ = tf2onnx.convert.from_function(tf.function(call), input_signature=list(specs) + weight_specs,
                                             opset=tf2onnx_opset())
    model = ir.serde.deserialize_model(proto)
    del proto
    graph = model.graph
    by_name = {v.name: v for v in graph.inputs}
    for v, name in zip(variables, names):
        value = by_name.get(name)
        if value is None:  # a weight the inference graph never reads (e.g. a seed generator's state)
            continue
        graph.inputs.remove(value)
        value.const_value = ir.Tensor(np.asarray(v.numpy()), name=name)
        graph.register_initializer(value)
    order = {name: i for i, name in enumerate(outputs)}  # TF returns a dict's entries sorted by key
    ordered = sorted(graph.outputs, key=lambda o: order.get(o.name, len(order)))
    graph.outputs.clear()
    graph.outputs.extend(ordered)
    return model


def _weight_names(variables) -> list[str]:
    """TF-legal, unique input names after the variables' paths: `block1_conv1/kernel` ->
    `block1_conv1.kernel`."""
    names, seen = [], set()
    for i, v in enumerate(variables):
        base = re.sub(r"[^A-Za-z0-9_.\-]", ".", getattr(v, "path", None) or v.name or f"weight_{i}").strip(".")
        base = base if re.match(r"[A-Za-z0-9.]", base or "") else f"w.{base}"
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}.{k}"
        seen.add(name)
        names.append(name)
    return names


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


def _input_specs(km, inputs, tf):
    shapes = dict(inputs) if isinstance(inputs, dict) else {}
    try:
        km.inputs  # noqa: B018  (a subclassed model has none)
    except (AttributeError, ValueError):
        if not shapes:
            raise InputError(f"Keras model {km.name!r} is subclassed and has no input layer: "
                             "pass inputs={'x': (1, 224, 224, 3)}") from None
        return [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in shapes.items()]
    if not km.inputs and shapes:
        return [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in shapes.items()]
    specs = []
    for t in km.inputs:
        name = t.name.split(":")[0]
        # a free batch size (None) becomes 1 so shape arithmetic folds away; pass inputs=
        # {name: shape} for another one (the Keras/TF exports keep their batch free anyway)
        shape = shapes.get(name, tuple(1 if d is None else d for d in t.shape))
        specs.append(tf.TensorSpec(shape, t.dtype, name=name))
    return specs


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


def check_against_keras(model: ir.Model, km, specs) -> None:
    """The imported graph must compute what Keras computes (DESIGN.md §1: importers are
    checked against the source framework where it is installed)."""
    def run(xs):
        return km(xs if len(xs) > 1 else xs[0], training=False)

    check_against_source(model, "keras", run, specs)


def check_against_source(model: ir.Model, framework: str, run, specs) -> None:
    """Run the source (`run(list of arrays)`) and the imported graph on the same seeded inputs;
    record the result in `irbridge.import_check` and raise VerificationError on a mismatch."""
    from ..verify import VerificationReport, compare, onnx_runner, random_inputs

    runner = onnx_runner(model)
    feeds = random_inputs([(name, tuple(1 if d is None else d for d in spec.shape), spec.dtype.as_numpy_dtype)
                           for name, spec in zip(runner.input_names, specs)], seed=0)
    ref = run([feeds[n] for n in runner.input_names])
    ref = list(ref.values()) if isinstance(ref, dict) else ref
    ref = ref if isinstance(ref, (list, tuple)) else [ref]
    got = runner.run(feeds)
    checks = [compare(n, np.asarray(r), got[n]) for n, r in zip(runner.output_names, ref)]
    ok = all(c.ok for c in checks)
    summary = ", ".join(f"{c.name}: max_abs={c.max_abs:.3g}" for c in checks)
    model.metadata_props["irbridge.import_check"] = f"{framework}: {'ok' if ok else 'MISMATCH'} ({summary})"
    if not ok:
        report = VerificationReport(False, None, 1e-4, checks)
        raise VerificationError(f"the ONNX graph tf2onnx made differs from {framework} itself:\n{report}", report)
