"""TF importer: SavedModel directories, frozen GraphDef .pb files and tf.functions, through
tf2onnx. Inputs are named and shaped from the signature; its free dims (None) stay free
(`batch` at axis 0, `<input>_dim<k>` elsewhere) unless `inputs`={name: shape} fixes them,
which the model's metadata records (irbridge.dims)."""

from __future__ import annotations

import os
from pathlib import Path

import onnx_ir as ir

from .. import provenance
from ..errors import InputError, UnsupportedError
from .keras_model import FIXED_BY_INPUTS, name_free_dims
from .source_check import check_against_source
from .tf_common import quiet_tf, refuse_unsafe_ops, tf2onnx_opset


def load(source, weights=None, inputs=None) -> ir.Model:
    if weights is not None:
        raise InputError("a TF graph holds its own weights; drop the WEIGHTS argument.")
    with quiet_tf():
        import tensorflow as tf
        import tf2onnx

        check = None  # (run, specs) of the source where it can be run here
        try:
            if isinstance(source, (str, os.PathLike)):
                path = Path(source)
                if path.is_dir():
                    proto, check = _saved_model(path, inputs, tf, tf2onnx)
                else:
                    proto, check = _graph_def(path, inputs, tf, tf2onnx)
            else:
                proto, check = _function(source, inputs, tf, tf2onnx)
        except (InputError, UnsupportedError):
            raise
        except Exception as e:
            raise UnsupportedError(f"tf2onnx could not convert {source!r}: {type(e).__name__}: "
                                   f"{str(e).splitlines()[0] if str(e) else ''}") from e
    model = ir.serde.deserialize_model(proto)
    _tag(model)
    name_free_dims(model, _fixed(model, inputs, check))
    if check is not None:

        check_against_source(model, "tensorflow", *check)
    return model


def _function(fn, inputs, tf, tf2onnx):
    """A tf.function (with an input_signature, or shapes given as inputs={name: shape}) or a
    ConcreteFunction."""
    if not hasattr(fn, "get_concrete_function"):  # a ConcreteFunction: call it from a tf.function
        concrete = fn
        specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in concrete.inputs
                 if t.dtype != tf.resource]
        fn = tf.function(lambda *args: concrete(*args))
        declared = specs
    elif getattr(fn, "input_signature", None) is not None:
        shapes = dict(inputs) if isinstance(inputs, dict) else {}
        specs = [tf.TensorSpec(shapes.get(s.name, s.shape), s.dtype, name=s.name) for s in fn.input_signature]
        declared = list(fn.input_signature)
        if shapes:  # tf2onnx traces a function's own signature: call it from one of the given shapes
            inner = fn
            fn = tf.function(lambda *args: inner(*args))
    elif isinstance(inputs, dict):
        specs = [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in inputs.items()]
        declared = [tf.TensorSpec([None] * len(s.shape), s.dtype, name=s.name) for s in specs]  # nothing declared
    else:
        raise InputError("a tf.function needs its input signature: decorate it with "
                         "@tf.function(input_signature=[...]) or pass inputs={name: shape}")
    refuse_unsafe_ops(fn.get_concrete_function(*specs).graph.as_graph_def(), "tf.function")
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=tf2onnx_opset())
    return proto, (lambda xs: fn(*[tf.constant(x) for x in xs]), declared)


def _saved_model(path: Path, inputs, tf, tf2onnx):
    if not (path / "saved_model.pb").exists():
        raise InputError(f"{path}: not a SavedModel (no saved_model.pb inside).")
    from tf2onnx import tf_loader

    graph_def, in_names, out_names = tf_loader.from_saved_model(str(path), None, None, signatures=None)
    refuse_unsafe_ops(graph_def, str(path))
    shapes = {f"{k}:0" if ":" not in k else k: v for k, v in (dict(inputs) if inputs else {}).items()}
    proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=in_names, output_names=out_names,
                                              opset=tf2onnx_opset(), shape_override=shapes or None)
    return proto, _graph_check(graph_def, in_names, out_names, shapes, tf)


def _graph_def(path: Path, inputs, tf, tf2onnx):
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
    shapes = {f"{k}:0" if ":" not in k else k: v for k, v in (dict(inputs) if inputs else {}).items()}
    in_names, out_names = [f"{p}:0" for p in placeholders], [f"{o}:0" for o in outputs]
    proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=in_names, output_names=out_names,
                                              opset=tf2onnx_opset(), shape_override=shapes or None)
    return proto, _graph_check(graph_def, in_names, out_names, shapes, tf)


def _graph_check(graph_def, in_names, out_names, shapes, tf):
    """(run, the graph's own input specs) running the frozen graph itself in TF, for the import
    check (`shapes` are the check's business: it reads them from the imported graph)."""
    def build():
        tf.compat.v1.import_graph_def(graph_def, name="")

    fn = tf.compat.v1.wrap_function(build, [])
    ins = [fn.graph.get_tensor_by_name(n) for n in in_names]
    run = fn.prune(ins, [fn.graph.get_tensor_by_name(n) for n in out_names])
    specs = [tf.TensorSpec(t.shape, t.dtype, name=n) for n, t in zip(in_names, ins)]  # as the graph declares
    return (lambda xs: [o.numpy() for o in run(*[tf.constant(x) for x in xs])]), specs


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
