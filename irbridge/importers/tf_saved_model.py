"""A TF2 SavedModel read without restoring it: the serving signature's function from
saved_model.pb, and only the variables it reads, each read once from the checkpoint.

`tf.saved_model.load` restores every variable the object graph tracks (a SavedModel Keras
exports tracks each weight twice: 2.1x the weights resident before anything else happens), and
tf2onnx's own path freezes them into the graph and copies them at each optimizer step. Here:

    saved_model.pb ─ object graph: signatures/serving_default -> concrete function F,
                     bound inputs (the variables F captures) -> checkpoint keys
    GraphDef:  Placeholder x, Placeholder<resource> v0..vn -> StatefulPartitionedCall F -> Identity
               (inlined, each ReadVariableOp of v_i a Placeholder named after the variable)
    values:    v_i's checkpoint tensor, read once as a TF tensor (RestoreV2, run here on the
               user's checkpoint): the ONNX initializer is a numpy view of it, and the import
               check feeds TF the tensor itself, so the weights are held once

The import check then runs that graph in TF with those values fed. A SavedModel this cannot read
(TF1-style, without an object graph) returns None: the caller restores it the usual way.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


class _Var:
    """What reads_as_placeholders needs of a variable: dtype and shape."""

    def __init__(self, dtype, shape):
        self.dtype, self.shape = dtype, shape


def read(path: Path, tf):
    """(graph_def, data inputs [(TF tensor, name)], outputs [(TF tensor, name)], resources
    {placeholder: (weight name, _Var)}, values {weight name: TF tensor}) or None."""
    from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((path / "saved_model.pb").read_bytes())
    mg = next((m for m in sm.meta_graphs if "serve" in m.meta_info_def.tags), sm.meta_graphs[0] if sm.meta_graphs else None)
    if mg is None or not mg.object_graph_def.nodes:
        return None
    og = mg.object_graph_def
    sigs = next((c.node_id for c in og.nodes[0].children if c.local_name == "signatures"), None)
    if sigs is None:
        return None
    found = {c.local_name: og.nodes[c.node_id] for c in og.nodes[sigs].children}
    if not found:
        raise InputError(f"{path}: the SavedModel has no signatures to import (save it with "
                         "signatures=..., or a tf.function with an input_signature as __call__)")
    key = "serving_default" if "serving_default" in found else (next(iter(found)) if len(found) == 1 else None)
    if key is None:
        raise InputError(f"{path}: the SavedModel has several signatures and no serving_default: "
                         f"{', '.join(sorted(found))}")
    node = found[key]
    if node.WhichOneof("kind") != "bare_concrete_function":
        return None
    fname = node.bare_concrete_function.concrete_function_name
    fdef = next((f for f in mg.graph_def.library.function if f.signature.name == fname), None)
    saved = og.concrete_functions.get(fname)
    sigdef = mg.signature_def.get(key)
    if fdef is None or saved is None or sigdef is None:
        return None
    bound = list(saved.bound_inputs)
    args = list(fdef.signature.input_arg)
    n_data = len(args) - len(bound)
    prefix = str(path / "variables" / "variables")
    reader = tf.train.load_checkpoint(prefix)
    graph_obj = trackable_object_graph_pb2.TrackableObjectGraph()
    graph_obj.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    graph_def = tf.compat.v1.GraphDef()
    graph_def.library.CopyFrom(mg.graph_def.library)
    graph_def.versions.CopyFrom(mg.graph_def.versions)
    call = graph_def.node.add(name=key, op="StatefulPartitionedCall")
    call.attr["f"].func.name = fname
    data = []
    for i, arg in enumerate(args[:n_data]):
        name = fdef.arg_attr[i].attr["_user_specified_name"].s.decode() if "_user_specified_name" in \
            fdef.arg_attr[i].attr else arg.name
        info = sigdef.inputs.get(name)
        ph = graph_def.node.add(name=name, op="Placeholder")
        ph.attr["dtype"].type = arg.type
        if info is not None:
            ph.attr["shape"].shape.CopyFrom(info.tensor_shape)
        call.input.append(name)
        data.append((f"{name}:0", name))
    resources, values, seen = {}, {}, set(n for _, n in data)
    from .tf_graphdef import weight_name

    for k, (_arg, node_id) in enumerate(zip(args[n_data:], bound)):
        var = og.nodes[node_id].variable if og.nodes[node_id].WhichOneof("kind") == "variable" else None
        ckpt = next((a.checkpoint_key for a in graph_obj.nodes[node_id].attributes if a.name == "VARIABLE_VALUE"),
                    None) if node_id < len(graph_obj.nodes) else None
        if var is None or ckpt is None:
            return None  # a captured resource that is no variable (a table, ...): the usual way
        ph_name = f"irbridge_capture_{k}"
        ph = graph_def.node.add(name=ph_name, op="Placeholder")
        ph.attr["dtype"].type = tf.resource.as_datatype_enum
        call.input.append(ph_name)
        weight = weight_name(var.name or ckpt, seen)
        resources[ph_name] = (weight, _Var(tf.dtypes.as_dtype(var.dtype), tf.TensorShape(var.shape)))
        values[weight] = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[ckpt], shape_and_slices=[""],
                                              dtypes=[tf.dtypes.as_dtype(var.dtype)])[0]
    outputs = []
    for k, (out_key, arg) in enumerate(zip(sorted(sigdef.outputs), fdef.signature.output_arg)):
        ident = graph_def.node.add(name=out_key, op="Identity", input=[f"{key}:{k}"])
        ident.attr["T"].type = arg.type
        outputs.append((f"{out_key}:0", out_key))
    return graph_def, data, outputs, resources, values
