"""TF graphs -> ONNX without freezing the weights into them: what the Keras, SavedModel,
frozen-.pb and tf.function imports share.

tf2onnx's own entry points freeze every variable into a Const and then run TF's and its own
optimizers over the frozen graph, copying the weights at each step. Here the weights stay out
of the graph: every value the graph reads but does not compute (a variable, a captured eager
tensor, a large float Const of a frozen graph) becomes a Placeholder for tf2onnx, and then an
initializer holding the value itself (the variable's buffer, not a copy, where TF allows it).

    before:  ReadVariableOp(block1_conv1/kernel: resource)  -> Conv2D
    after:   Placeholder block1_conv1.kernel -> Conv2D ...; tf2onnx; then block1_conv1.kernel is
             an ONNX initializer (the Conv reads it through tf2onnx's layout Transpose)

Function calls (`PartitionedCall`, `StatefulPartitionedCall`: nested tf.functions, Keras's
XLA-compiled grouped convolutions, a SavedModel's layers) are inlined first, their nodes named
under the call (`stage_0_block_0_depthwise_conv_1/PartitionedCall/Conv2D`), so provenance finds
the layer. Whatever tf2onnx still cannot map to ONNX is refused by name (`refuse_leftovers`).
"""

from __future__ import annotations

import re

import numpy as np
import onnx_ir as ir

from ..errors import UnsupportedError
from . import tf2onnx_fixes
from .tf_common import tf2onnx_opset

CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
# a frozen graph's float Consts of at least this many elements are weights (initializers); the
# small ones (shapes, axes, scalars) stay Consts for tf2onnx to fold
WEIGHT_ELEMENTS = 64


def inline_calls(graph_def, where: str = "the graph"):
    """A copy of `graph_def` with every PartitionedCall/StatefulPartitionedCall of a function in
    its library (and every node whose op is such a function: a direct call) replaced by the function's nodes (recursively); control edges on calls are
    dropped (an inference graph orders nothing by them)."""
    import tensorflow as tf
    from tensorflow.python.framework import function_def_to_graph as f2g

    lib = {f.signature.name: f for f in graph_def.library.function}
    nodes = list(graph_def.node)
    scope = tf.Graph()  # knows the library, for function bodies that call a function directly
    if lib:
        with scope.as_default():
            only_lib = tf.compat.v1.GraphDef()
            only_lib.library.CopyFrom(graph_def.library)
            only_lib.versions.CopyFrom(graph_def.versions)
            tf.graph_util.import_graph_def(only_lib, name="")
    for _ in range(64):  # nesting depth
        if not any(n.op in CALL_OPS or n.op in lib for n in nodes):
            break
        out, renames = [], {}
        for n in nodes:
            fname = n.attr["f"].func.name if n.op in CALL_OPS else (n.op if n.op in lib else None)
            if fname is None:
                out.append(n)
                continue
            if fname not in lib:
                raise UnsupportedError(f"{where}: node {n.name!r} ({n.op}) calls function {fname!r}, which "
                                       "the graph does not define", nodes=[n.name])
            with scope.as_default():
                out += _inline_one(n, lib[fname], renames, f2g)
        nodes = [_renamed(n, renames) for n in out]
    else:
        raise UnsupportedError(f"{where}: function calls nested deeper than 64 levels")
    result = tf.compat.v1.GraphDef()
    result.versions.CopyFrom(graph_def.versions)
    result.node.extend(nodes)
    used = _functions_used(nodes, lib)  # control flow branches; not a SavedModel's saver functions
    result.library.function.extend(lib[name] for name in used)
    result.library.gradient.extend(graph_def.library.gradient)
    return result


def _functions_used(nodes, lib: dict) -> list[str]:
    """The library functions `nodes` reach through function-valued attributes, transitively."""
    def refs(node_defs):
        for n in node_defs:
            yield n.op
            for a in n.attr.values():
                if a.HasField("func"):
                    yield a.func.name
                elif a.HasField("list"):
                    yield from (f.name for f in a.list.func)

    used, todo = [], list(refs(nodes))
    while todo:
        name = todo.pop()
        if name in lib and name not in used:
            used.append(name)
            todo += list(refs(lib[name].node_def))
    return used


def _inline_one(call, fdef, renames: dict, f2g) -> list:
    """The nodes of `fdef` named under `call`, its arguments wired to the call's inputs; records
    in `renames` where each of the call's outputs now comes from."""
    body, flat = f2g.function_def_to_graph_def(fdef)
    args = [a.name for a in fdef.signature.input_arg]
    data = [i for i in call.input if not i.startswith("^")]
    bound = dict(zip(args, data))
    prefix = call.name + "/"
    nodes = []
    for inner in body.node:
        if inner.op == "Placeholder" and inner.name in bound:
            continue
        node = type(inner)()
        node.CopyFrom(inner)
        node.name = prefix + inner.name
        node.device = ""
        del node.input[:]
        for i in inner.input:
            control = i.startswith("^")
            base = i.lstrip("^").split(":")[0]
            if base in bound:
                if not control:
                    node.input.append(bound[base])
            else:
                node.input.append(("^" if control else "") + prefix + i.lstrip("^"))
        nodes.append(node)
    for k, out_arg in enumerate(fdef.signature.output_arg):
        src = flat[fdef.ret[out_arg.name]]
        base = src.split(":")[0]
        renames[f"{call.name}:{k}"] = bound[base] if base in bound else prefix + src
    renames["^" + call.name] = None
    return nodes


def _renamed(node, renames: dict):
    if not renames or not any(_key(i) in renames for i in node.input):
        return node
    inputs = []
    for i in node.input:
        key = _key(i)
        if key not in renames:
            inputs.append(i)
        elif renames[key] is not None:
            inputs.append(renames[key])
    del node.input[:]
    node.input.extend(inputs)
    return node


def _key(name: str) -> str:
    if name.startswith("^"):
        return name
    return name if ":" in name else name + ":0"


def reads_as_placeholders(graph_def, resources: dict[str, tuple[str, object]]) -> None:
    """In place: every ReadVariableOp of a resource Placeholder in `resources` ({placeholder
    name: (weight name, variable)}) becomes an Identity of a new float Placeholder named after the
    weight; the resource Placeholders go. (Resources passed through Identity are followed.)"""
    import tensorflow as tf

    alias = dict((name, name) for name in resources)
    for n in graph_def.node:  # Identity chains of resources
        if n.op == "Identity" and n.input and n.input[0].split(":")[0] in alias:
            alias[n.name] = alias[n.input[0].split(":")[0]]
    reads = ("ReadVariableOp", "ResourceGather")
    unread = [n for n in graph_def.node if n.name not in alias and any(
        i.lstrip("^").split(":")[0] in alias for i in (n.input[1:] if n.op in reads else n.input))]
    if unread:
        raise UnsupportedError("the graph uses its variables other than by reading them: "
                               + ", ".join(f"{n.name} ({n.op})" for n in unread[:8]),
                               nodes=[n.name for n in unread])
    added, keep = {}, []
    for n in graph_def.node:
        if n.name in alias:
            continue
        if n.op in reads and n.input and n.input[0].split(":")[0] in alias:
            weight, var = resources[alias[n.input[0].split(":")[0]]]
            if weight not in added:
                ph = tf.compat.v1.NodeDef(name=weight, op="Placeholder")
                ph.attr["dtype"].type = var.dtype.as_datatype_enum
                ph.attr["shape"].shape.CopyFrom(tf.TensorShape(var.shape).as_proto())
                added[weight] = ph
            del n.input[0]
            n.input.insert(0, weight)
            if n.op == "ReadVariableOp":
                n.op = "Identity"
                n.attr["T"].type = n.attr["dtype"].type
                del n.attr["dtype"]
            else:  # ResourceGather(resource, indices) -> GatherV2(weight, indices, 0)
                n.op = "GatherV2"
                n.attr["Tparams"].type = n.attr["dtype"].type
                for a in ("dtype", "batch_dims", "validate_indices"):
                    if a in n.attr:
                        del n.attr[a]
                n.input.append(_axis_const(graph_def, keep, n.name))
                n.attr["Taxis"].type = tf.int32.as_datatype_enum
        keep.append(n)
    del graph_def.node[:]
    graph_def.node.extend(list(added.values()) + keep)


def _axis_const(graph_def, keep: list, owner: str) -> str:
    import tensorflow as tf

    node = tf.compat.v1.NodeDef(name=owner + "/irbridge_axis", op="Const")
    node.attr["dtype"].type = tf.int32.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(0, tf.int32))
    keep.append(node)
    return node.name


def consts_as_placeholders(graph_def) -> dict:
    """In place: a frozen graph's large float Consts become Placeholders; returns {name: array}
    (a view of the Const's bytes, taken out of the GraphDef, which then no longer holds them)."""
    import tensorflow as tf

    floats = (tf.float32.as_datatype_enum, tf.float16.as_datatype_enum, tf.float64.as_datatype_enum)
    values = {}
    for n in graph_def.node:
        if n.op != "Const" or n.attr["dtype"].type not in floats:
            continue
        shape = [d.size for d in n.attr["value"].tensor.tensor_shape.dim]
        if int(np.prod(shape)) < WEIGHT_ELEMENTS:
            continue
        dtype = n.attr["dtype"].type
        proto = n.attr["value"].tensor
        if proto.tensor_content:  # the array owns its copy (writable: TF can share it, see as_tf_tensor)
            values[n.name] = _aligned_copy(np.frombuffer(proto.tensor_content,
                                                         tf.dtypes.as_dtype(dtype).as_numpy_dtype).reshape(shape))
        else:  # a splat or a list of values
            values[n.name] = tf.make_ndarray(proto)
        n.op = "Placeholder"
        n.ClearField("attr")
        n.attr["dtype"].type = dtype
        n.attr["shape"].shape.CopyFrom(tf.TensorShape(shape).as_proto())
    return values


ALIGN = 64  # EIGEN_MAX_ALIGN_BYTES


def _aligned_copy(array: np.ndarray) -> np.ndarray:
    """A writable copy of `array` in a 64-byte aligned buffer."""
    raw = np.empty(array.nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    out = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def as_tf_tensor(value, tf):
    """`value` as a TF tensor sharing its memory where it can (DLPack for a writable numpy
    array: converting it the usual way copies it, transiently twice)."""
    if (isinstance(value, np.ndarray) and value.flags.writeable and value.flags.c_contiguous and value.size
            and value.ctypes.data % ALIGN == 0):  # TF's kernels assume aligned buffers
        try:
            return tf.experimental.dlpack.from_dlpack(value.__dlpack__())
        except Exception:  # noqa: BLE001 - a dtype DLPack cannot carry: copy
            pass
    return tf.convert_to_tensor(value)


def to_onnx(graph_def, inputs: list[str], outputs: list[str], values: dict[str, object],
            rename: dict[str, str] | None = None, shapes: dict | None = None, where: str = "the graph",
            layer_of=None) -> ir.Model:
    """tf2onnx on `graph_def` (inputs and outputs as TF tensor names `node:0`), then every
    Placeholder named in `values` ({node name: array or tf.Variable}) an initializer holding
    its value. `rename` gives ONNX names to TF tensor names."""
    import tf2onnx

    placeholders = [f"{name}:0" for name in values]
    rename = dict(rename or {})
    rename.update({f"{name}:0": name for name in values})
    with tf2onnx_fixes.transposes_kept(), tf2onnx_fixes.no_fake_feeds(set(values)):
        proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=list(inputs) + placeholders,
                                                  output_names=list(outputs), opset=tf2onnx_opset(),
                                                  shape_override=shapes or None, tensors_to_rename=rename,
                                                  custom_op_handlers=tf2onnx_fixes.HANDLERS)
    model = ir.serde.deserialize_model(proto)
    del proto
    graph = model.graph
    by_name = {v.name: v for v in graph.inputs}
    for name, value in values.items():
        v = by_name.get(name)
        if v is None:  # a value the inference graph never reads
            continue
        graph.inputs.remove(v)
        v.const_value = ir.Tensor(_array(value), name=name)
        graph.register_initializer(v)
    refuse_leftovers(model, where, layer_of)
    return model


def _array(value) -> np.ndarray:
    """A variable's value as numpy, sharing the variable's buffer where TF allows it."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "_numpy"):  # an EagerTensor: a view of its buffer
        return np.asarray(value)
    read = value.value() if hasattr(value, "value") and callable(value.value) else value
    return np.asarray(read)


def refuse_leftovers(model: ir.Model, where: str, layer_of=None) -> None:
    """tf2onnx passes on TF ops it cannot convert as nodes of the same name; list them (with
    their layer, `layer_of(node name)`, where known) and refuse: never hand on a graph
    onnxruntime rejects."""
    import onnx

    left = []
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        domain = node.domain or ""
        if domain in ("", "ai.onnx", "ai.onnx.ml", "com.microsoft") and not onnx.defs.has(node.op_type, domain):
            left.append(node)
    if left:
        def said(n):
            layer = layer_of(n.name or "") if layer_of else None
            return f"{n.name} ({n.op_type}" + (f", layer {layer}" if layer else "") + ")"

        ops = sorted({n.op_type for n in left})
        raise UnsupportedError(f"{where}: tf2onnx has no ONNX equivalent for TF op(s) {', '.join(ops)}: "
                               f"{', '.join(said(n) for n in left[:10])}{' ...' if len(left) > 10 else ''}",
                               nodes=[n.name for n in left])


def weight_name(path: str, seen: set) -> str:
    """A TF-legal, unique name after a variable's path: `block1_conv1/kernel` ->
    `block1_conv1.kernel`."""
    base = re.sub(r"[^A-Za-z0-9_.\-]", ".", path).strip(".").removesuffix(".0").removesuffix(":0")
    base = base if re.match(r"[A-Za-z0-9.]", base or "") else f"w.{base}"
    name, k = base, 1
    while name in seen:
        k += 1
        name = f"{base}.{k}"
    seen.add(name)
    return name


def concrete_to_onnx(concrete, inputs: list[str], rename: dict[str, str], values: dict | None = None,
                     shapes: dict | None = None, where: str = "the function", variables=(),
                     layer_of=None) -> ir.Model:
    """A ConcreteFunction to ONNX: `inputs` are its data inputs (TF tensor names), `values`
    ({placeholder name: value}) inputs that are weights; what it captures (its graph's
    variables and `variables`, eager tensors) becomes initializers too."""
    import tensorflow as tf

    graph_def = inline_calls(concrete.graph.as_graph_def(add_shapes=True), where)
    values = {**consts_as_placeholders(graph_def), **(values or {})}
    variables = {id(v.handle): v for v in list(variables) + list(concrete.graph.variables or [])}
    captured = {internal.name.split(":")[0] for _, internal in concrete.graph.captures}
    resources, seen = {}, set(values) | {n.name for n in graph_def.node if n.name not in captured}
    for external, internal in concrete.graph.captures:
        name = internal.name.split(":")[0]
        if internal.dtype == tf.resource:
            var = variables.get(id(external))
            if var is None:
                continue  # not a variable (a table, ...): tf2onnx decides
            resources[name] = (weight_name(getattr(var, "path", None) or var.name, seen), var)
        else:
            values[name] = np.asarray(external)
    if resources:
        reads_as_placeholders(graph_def, resources)
        values.update({w: var for w, var in resources.values()})
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    return to_onnx(graph_def, inputs, outputs, values, rename, shapes, where, layer_of)


def structured_renames(concrete, inputs: list[str]) -> dict[str, str]:
    """{TF tensor name: ONNX name}: the inputs by their argument names, dict outputs by key."""
    import tensorflow as tf

    rename = {}
    specs = [t for t in tf.nest.flatten(concrete.structured_input_signature) if isinstance(t, tf.TensorSpec)]
    rename.update({i: s.name for i, s in zip(inputs, specs) if s.name})
    if isinstance(concrete.structured_outputs, dict):  # flattened (as concrete.outputs is) by sorted key
        outs = [t for t in concrete.outputs if t.dtype != tf.resource]
        keys = sorted(concrete.structured_outputs)
        if len(keys) == len(outs):
            rename.update({t.name: key for t, key in zip(outs, keys)})
    return rename
