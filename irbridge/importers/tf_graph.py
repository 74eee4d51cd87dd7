"""TF importer: SavedModel directories, frozen GraphDef .pb files and tf.functions, through
tf2onnx, their weights kept out of the TF graph (tf_graphdef): variables, captured tensors and
large constants become ONNX initializers, never frozen copies; a TF2 SavedModel is read without
restoring it (tf_saved_model). Inputs are named and shaped from the signature; its free dims
(None) stay free (`batch` at axis 0, `<input>_dim<k>` elsewhere) unless `inputs`={name: shape}
fixes them, which the model's metadata records (irbridge.dims). The imported graph is checked
against TF itself at two sizes of every free dim."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx_ir as ir

from .. import provenance
from ..errors import InputError, UnsupportedError
from . import tf_graphdef, tf_saved_model
from .keras_model import FIXED_BY_INPUTS, name_free_dims
from .source_check import check_against_source
from .tf_common import quiet_tf, refuse_unsafe_ops


def load(source, weights=None, inputs=None) -> ir.Model:
    if weights is not None:
        raise InputError("a TF graph holds its own weights; drop the WEIGHTS argument.")
    with quiet_tf():
        import tensorflow as tf

        try:
            if isinstance(source, (str, os.PathLike)):
                path = Path(source)
                if path.is_dir():
                    model, check = _saved_model(path, inputs, tf)
                else:
                    model, check = _graph_def(path, inputs, tf)
            else:
                model, check = _function(source, inputs, tf)
        except (InputError, UnsupportedError):
            raise
        except Exception as e:
            raise UnsupportedError(f"tf2onnx could not convert {source!r}: {type(e).__name__}: "
                                   f"{str(e).splitlines()[0] if str(e) else ''}") from e
    _tag(model)
    name_free_dims(model, _fixed(model, inputs, check))
    check_against_source(model, "tensorflow", *check)
    return model


def _function(fn, inputs, tf):
    """A tf.function (with an input_signature, or shapes given as inputs={name: shape}) or a
    ConcreteFunction. Its variables and large constants become initializers."""
    shapes = dict(inputs) if isinstance(inputs, dict) else {}
    if not hasattr(fn, "get_concrete_function"):  # a ConcreteFunction
        concrete = fn
        declared = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in concrete.inputs
                    if t.dtype != tf.resource][:len(_flat_specs(concrete, tf))]
    elif getattr(fn, "input_signature", None) is not None:
        declared = list(fn.input_signature)
        concrete = fn.get_concrete_function(*declared)
    elif shapes:
        declared = [tf.TensorSpec([None] * len(s), tf.float32, name=n) for n, s in shapes.items()]  # nothing declared
        concrete = fn.get_concrete_function(*[tf.TensorSpec(s, tf.float32, name=n) for n, s in shapes.items()])
    else:
        raise InputError("a tf.function needs its input signature: decorate it with "
                         "@tf.function(input_signature=[...]) or pass inputs={name: shape}")
    graph_def = concrete.graph.as_graph_def()
    refuse_unsafe_ops(graph_def, "tf.function")
    data = [t.name for t in concrete.inputs if t.dtype != tf.resource][:len(declared)]
    rename = tf_graphdef.structured_renames(concrete, data)
    override = _override(data, rename, shapes)
    model = tf_graphdef.concrete_to_onnx(concrete, data, rename, shapes=override, where="tf.function")
    return model, (_runner(concrete, model, rename, tf), declared)


def _saved_model(path: Path, inputs, tf):
    """A SavedModel directory: its serving signature (or its only one). A TF2 SavedModel is read
    without restoring it (tf_saved_model); one without an object graph (TF1's simple_save) is
    restored by TF and its variables read where TF holds them (no frozen copy)."""
    if not (path / "saved_model.pb").exists():
        raise InputError(f"{path}: not a SavedModel (no saved_model.pb inside).")
    got = tf_saved_model.read(path, tf)
    if got is not None:
        return _unrestored(path, got, inputs, tf)
    loaded = tf.saved_model.load(str(path))
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if not signatures:
        raise InputError(f"{path}: the SavedModel has no signatures to import (save it with "
                         "signatures=..., or a tf.function with an input_signature as __call__)")
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures)) \
        if len(signatures) == 1 else None
    if key is None:
        raise InputError(f"{path}: the SavedModel has several signatures and no serving_default: "
                         f"{', '.join(sorted(signatures))}")
    concrete = signatures[key]
    refuse_unsafe_ops(concrete.graph.as_graph_def(), str(path))
    specs = _flat_specs(concrete, tf)
    data = [t.name for t in concrete.inputs if t.dtype != tf.resource][:len(specs)]
    rename = {t: s.name for t, s in zip(data, specs)}
    rename.update(tf_graphdef.structured_renames(concrete, data))
    shapes = dict(inputs) if isinstance(inputs, dict) else {}
    model = tf_graphdef.concrete_to_onnx(concrete, data, rename, shapes=_override(data, rename, shapes),
                                         where=str(path), variables=_variables(loaded, tf))
    declared = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
    return model, (_runner(concrete, model, rename, tf, by_keyword=[s.name for s in specs]), declared)


def _unrestored(path: Path, got, inputs, tf):
    """A SavedModel read by tf_saved_model (its variables straight from the checkpoint, never
    restored into TF variables); checked by running the same graph in TF on those values."""
    graph_def, data, outs, resources, values = got
    graph_def = tf_graphdef.inline_calls(graph_def, str(path))
    refuse_unsafe_ops(graph_def, str(path))
    tf_graphdef.reads_as_placeholders(graph_def, resources)
    in_names, out_names = [t for t, _ in data], [t for t, _ in outs]
    rename = dict(data + outs)
    shapes = _override(in_names, rename, dict(inputs) if isinstance(inputs, dict) else {})
    model = tf_graphdef.to_onnx(graph_def, in_names, out_names, values, rename, shapes, str(path))
    return model, _fed_check(graph_def, in_names, out_names, values, tf)


def _graph_def(path: Path, inputs, tf):
    """A frozen GraphDef: its large float constants become initializers (taken out of the
    GraphDef, not copied through tf2onnx's optimizers)."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as e:
        raise InputError(f"{path}: not a frozen TF GraphDef ({type(e).__name__}: {e}).") from e
    refuse_unsafe_ops(graph_def, str(path))
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
    outputs = [n.name for n in graph_def.node if n.name not in consumed and n.op not in ("Const", "NoOp", "Placeholder")]
    if not placeholders or not outputs:
        raise InputError(f"{path}: cannot tell the graph's inputs and outputs (Placeholders and unread nodes).")
    shapes = {f"{k}:0" if ":" not in k else k: list(v) for k, v in (dict(inputs) if inputs else {}).items()}
    in_names, out_names = [f"{p}:0" for p in placeholders], [f"{o}:0" for o in outputs]
    values = tf_graphdef.consts_as_placeholders(graph_def)  # before inlining copies the nodes
    graph_def = tf_graphdef.inline_calls(graph_def, str(path))
    rename = {t: t.split(":")[0] for t in in_names + out_names}  # `x`, as the GraphDef names it
    model = tf_graphdef.to_onnx(graph_def, in_names, out_names, values, rename, shapes or None, str(path))
    return model, _fed_check(graph_def, in_names, out_names, values, tf)


def _fed_check(graph_def, in_names, out_names, values: dict, tf):
    """The import check's (run, specs): `graph_def` run in TF with the weights fed (the same
    tensors the ONNX initializers view: no second copy)."""
    fed = list(values)
    run, specs = _graph_check(graph_def, in_names + [f"{w}:0" for w in fed], out_names, tf)
    tensors = [tf_graphdef.as_tf_tensor(values[w], tf) for w in fed]
    return (lambda xs: run(list(xs) + tensors)), specs[:len(in_names)]


def _flat_specs(concrete, tf) -> list:
    return [t for t in tf.nest.flatten(concrete.structured_input_signature) if isinstance(t, tf.TensorSpec)]


def _override(data: list[str], rename: dict, shapes: dict) -> dict | None:
    """tf2onnx's shape_override ({TF tensor: shape}) from inputs={name: shape}."""
    if not shapes:
        return None
    by_name = {rename.get(t, t).split(":")[0]: t for t in data}
    by_name.update({t.split(":")[0]: t for t in data})
    unknown = [k for k in shapes if str(k).split(":")[0] not in by_name]
    if unknown:
        raise InputError(f"inputs= names {unknown}; the graph's inputs are {sorted(rename.get(t, t) for t in data)}")
    return {by_name[str(k).split(":")[0]]: [None if d is None else int(d) for d in v] for k, v in shapes.items()}


def _variables(obj, tf) -> list:
    """Every tf.Variable reachable from a loaded SavedModel object."""
    found, seen, stack = [], set(), [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, tf.Variable):
            found.append(o)
            continue
        children = getattr(o, "_trackable_children", None)
        if callable(children):
            try:
                stack.extend(children().values())
            except Exception:  # noqa: BLE001 - a trackable that cannot list its children here
                continue
    return found


def _runner(concrete, model: ir.Model, rename: dict, tf, by_keyword=None):
    """run(list of arrays in graph input order) -> outputs in graph output order, by TF itself."""
    out_keys = {v: k for k, v in rename.items()}

    def run(xs):
        args = [tf.constant(x) for x in xs]
        out = concrete(**dict(zip(by_keyword, args))) if by_keyword else concrete(*args)
        if isinstance(out, dict):
            return [np.asarray(out[v.name]) if v.name in out else np.asarray(out[out_keys.get(v.name, v.name)])
                    for v in model.graph.outputs]
        flat = tf.nest.flatten(out)
        return [np.asarray(o) for o in flat]

    return run


def _graph_check(graph_def, in_names, out_names, tf):
    """(run, the graph's own input specs) running the frozen graph itself in TF, for the import
    check."""
    def build():
        tf.compat.v1.import_graph_def(graph_def, name="")

    fn = tf.compat.v1.wrap_function(build, [])
    ins = [fn.graph.get_tensor_by_name(n) for n in in_names]
    run = fn.prune(ins, [fn.graph.get_tensor_by_name(n) for n in out_names])
    specs = [tf.TensorSpec(t.shape, t.dtype, name=n) for n, t in zip(in_names, ins)]  # as the graph declares
    return (lambda xs: [o.numpy() for o in run(*[tf.convert_to_tensor(x) for x in xs])]), specs


def _fixed(model: ir.Model, inputs, check) -> list[tuple]:
    """[(input, axis, size, why)]: the dims `inputs`={name: shape} gave where the source's
    signature left them free."""
    if not isinstance(inputs, dict) or check is None:
        return []
    declared = {s.name.split(":")[0]: s.shape for s in check[1]}
    out = []
    for name, shape in inputs.items():
        key = str(name).split(":")[0]
        source = declared.get(key)
        graph_name = next((v.name for v in model.graph.inputs if v.name.split(":")[0] == key), key)
        for axis, d in enumerate(shape):
            free = source is None or source.rank is None or axis >= source.rank or source[axis] is None
            if d is not None and free:
                out.append((graph_name, axis, int(d), FIXED_BY_INPUTS))
    return out


def _tag(model: ir.Model) -> None:
    """TF scope names are the layers: `vgg/conv1_1/Conv2D` is layer `conv1_1` (the scope that
    owns the op); tf2onnx's own nodes join the node they feed."""
    for node in model.graph:
        parts = [p for p in node.name.split("/") if p]
        if len(parts) >= 2:
            node.metadata_props[provenance.SOURCE] = parts[-2]
            node.metadata_props[provenance.SOURCE_OP] = parts[-1].split("_")[0]
