"""Legacy Keras .h5 importer (Keras 1 and 2 HDF5 files), read with h5py — not through Keras 3,
which cannot load Keras 1 configs.

Literal, as every importer (DESIGN.md §1): data stays in the file's dim ordering — `th`/
channels_first graphs run NCHW, `tf`/channels_last graphs NHWC with a Transpose around each
channels-first ONNX op; kernels keep their stored layout behind a Transpose (marked HWIO or
OIHW); Keras 1 Theano kernels are true convolutions and reach the Conv through a spatial flip
(marked +flip). The passes fold all of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .. import provenance
from ..errors import InputError, IrbridgeError, UnsupportedError

SUPPORTED = {"InputLayer", "Convolution2D", "Conv2D", "Dense", "MaxPooling2D", "AveragePooling2D",
             "ZeroPadding2D", "Flatten", "Dropout", "Activation", "BatchNormalization", "Merge",
             "Add", "Concatenate", "Multiply"}
_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
                "softsign": "Softsign", "elu": "Elu", "selu": "Selu"}


DAMAGED = (KeyError, RuntimeError, OSError, ValueError, IndexError, TypeError, AttributeError)


def load(source, weights=None, inputs=None):
    path = Path(os.fspath(source))
    try:
        return _load(path)
    except IrbridgeError:
        raise
    except DAMAGED as e:  # h5py and the JSON config report damage in many ways
        raise InputError(f"{path}: not a readable Keras .h5 file (damaged or not Keras: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}).") from e


def _load(path: Path):
    import onnx_ir as ir

    f = _open(path)
    with f:
        meta = _file_meta(f, path)
        layers, edges, ins, outs = _architecture(meta["config"], path)
        unknown = [(ly["config"].get("name", "?"), ly["class_name"]) for ly in layers
                   if ly["class_name"] not in SUPPORTED]
        if unknown:
            code = [n for n, c in unknown if c == "Lambda"]
            why = (" Lambda layers hold Python code, which irbridge never runs." if code else "")
            raise UnsupportedError(
                f"{path}: {len(unknown)} layer(s) the legacy .h5 importer does not know: "
                + ", ".join(f"{n} ({c})" for n, c in unknown) + "." + why, nodes=[n for n, _ in unknown])
        weights_by_layer = _weights(f, path)
        b = _GraphBuilder(meta, weights_by_layer, path)
        for layer in layers:
            b.add(layer, edges.get(layer["config"]["name"], []))
        graph = helper.make_graph(b.nodes, meta["config"].get("config", {}).get("name", "keras_h5")
                                  if isinstance(meta["config"].get("config"), dict) else "keras_h5",
                                  b.inputs, [helper.make_tensor_value_info(b.out_of(o), TensorProto.FLOAT, None)
                                             for o in outs], b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="irbridge")
    model.ir_version = 9
    m = ir.serde.deserialize_model(model)
    for name, layout in b.layouts.items():
        m.graph.initializers[name].metadata_props[provenance.LAYOUT] = layout
    m.metadata_props["irbridge.keras_version"] = meta["keras_version"]
    m.metadata_props["irbridge.keras_backend"] = meta["backend"]
    return m


# --- the file --------------------------------------------------------------------------------
def _open(path: Path):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{path}: not a readable HDF5 file ({e}).") from e
    bad = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.external:
            bad.append(f"{name} (external storage)")
        elif obj.is_virtual:
            bad.append(f"{name} (a virtual dataset mapping other files)")
        elif obj.dtype.kind != "O" and obj.size * obj.dtype.itemsize > \
                1000 * obj.id.get_storage_size() + (1 << 20):
            bad.append(f"{name} (declares {obj.shape} but stores {obj.id.get_storage_size()} bytes)")

    for key in _all_links(f):
        link = f.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            bad.append(f"{key} (external link to {link.filename})")
    f.visititems(visit)
    if bad:
        f.close()
        raise InputError(f"{path}: irbridge refuses datasets that reach outside the file or declare far more "
                         f"data than they store: {', '.join(bad)}.")
    return f


def _all_links(group, prefix=""):
    import h5py

    for key in group.keys():
        full = f"{prefix}{key}"
        yield full
        link = group.get(key, getlink=True)
        if isinstance(link, (h5py.HardLink,)) and isinstance(group[key], h5py.Group):
            yield from _all_links(group[key], full + "/")


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _file_meta(f, path: Path) -> dict:
    if "model_config" not in f.attrs:
        raise InputError(f"{path}: holds no model_config (a weights-only file?); bind its weights onto "
                         "an architecture with `irbridge bind`.")
    config = json.loads(_text(f.attrs["model_config"]))
    version = _text(f.attrs.get("keras_version", "1"))
    backend = _text(f.attrs.get("backend", "theano" if version.startswith("1") else "tensorflow"))
    return {"config": config, "keras_version": version, "backend": backend}


def _weights(f, path: Path) -> dict[str, list[np.ndarray]]:
    return {layer: [a for _, a in ws] for layer, ws in named_weights(f).items()}


def named_weights(f) -> dict[str, list[tuple[str, np.ndarray]]]:
    """{layer: [(weight name, array)]} of a legacy Keras file, whole model or weights-only."""
    g = f["model_weights"] if "model_weights" in f else f
    out = {}
    for lname in [_text(n) for n in g.attrs.get("layer_names", [])]:
        lg = g[lname]
        out[lname] = [(_text(w), np.asarray(lg[_text(w)])) for w in lg.attrs.get("weight_names", [])]
    return out


def _architecture(config: dict, path: Path):
    """(layers in order, {layer: [input layer names]}, input layer names, output layer names)."""
    cls, cfg = config.get("class_name"), config.get("config")
    if cls == "Sequential":
        layers = cfg if isinstance(cfg, list) else cfg["layers"]
        names = [ly["config"]["name"] for ly in layers]
        edges = {names[i]: [names[i - 1]] for i in range(1, len(names))}
        first = layers[0]["config"]
        if layers[0]["class_name"] != "InputLayer":
            shape = first.get("batch_input_shape") or first.get("batch_shape")
            if shape is None:
                raise InputError(f"{path}: the first layer gives no batch_input_shape")
            inp = {"class_name": "InputLayer", "config": {"name": "input", "batch_input_shape": shape}}
            layers = [inp] + layers
            edges[names[0]] = ["input"]
        return layers, edges, [layers[0]["config"]["name"]], [layers[-1]["config"]["name"]]
    if cls in ("Model", "Functional"):
        layers = cfg["layers"]
        edges = {}
        for ly in layers:
            nodes = ly.get("inbound_nodes") or []
            if nodes:
                edges[ly["config"]["name"]] = [_inbound_name(e) for e in nodes[0]]
        return (layers, edges, [i[0] for i in cfg["input_layers"]], [o[0] for o in cfg["output_layers"]])
    raise UnsupportedError(f"{path}: model class {cls!r} (expected Sequential or Model)")


def _inbound_name(e) -> str:
    if isinstance(e, dict):  # Keras 2.x later format
        return e["args"][0]["config"]["keras_history"][0]
    return e[0]


# --- the graph -------------------------------------------------------------------------------
class _GraphBuilder:
    def __init__(self, meta: dict, weights: dict, path: Path):
        self.meta, self.weights, self.path = meta, weights, path
        self.nodes, self.initializers, self.inputs = [], [], []
        self.layouts: dict[str, str] = {}
        self.out: dict[str, str] = {}  # layer name -> value name of its output
        self.k1 = meta["keras_version"].startswith("1")
        self.flip = self.k1 and meta["backend"] == "theano"

    def out_of(self, layer: str) -> str:
        return self.out[layer]

    def _node(self, op, inputs, outputs, layer, cls, **attrs):
        n = helper.make_node(op, inputs, outputs, name=f"{layer}/{op}_{len(self.nodes)}", **attrs)
        n.metadata_props.add(key=provenance.SOURCE, value=layer)
        n.metadata_props.add(key=provenance.SOURCE_OP, value=cls)
        self.nodes.append(n)
        return outputs[0]

    def _init(self, name, array, layout=None):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if layout:
            self.layouts[name] = layout
        return name

    def _first(self, c) -> bool:
        order = c.get("dim_ordering") or c.get("data_format") or "default"
        if order == "default":
            return self.meta["backend"] == "theano"
        return order in ("th", "channels_first")

    def add(self, layer: dict, sources: list[str]) -> None:
        cls, c = layer["class_name"], layer["config"]
        name = c["name"]
        xs = [self.out[s] for s in sources]
        first = self._first(c)
        handler = getattr(self, "_" + cls.lower())
        out = handler(name, cls, c, xs, first, sources)
        self.out[name] = out
        act = c.get("activation")
        if act and act != "linear" and cls != "Activation":
            self.out[name] = self._apply_activation(name, cls, act, out)

    def _apply_activation(self, name, cls, act, x):
        if act == "softmax":
            return self._node("Softmax", [x], [f"{name}/softmax"], name, cls, axis=-1)
        if act not in _ACTIVATIONS:
            raise UnsupportedError(f"{self.path}: layer {name}: activation {act!r} is not supported")
        return self._node(_ACTIVATIONS[act], [x], [f"{name}/{act}"], name, cls)

    # each handler returns the output value name ------------------------------------------
    def _inputlayer(self, name, cls, c, xs, first, sources):
        shape = c.get("batch_input_shape") or c.get("batch_shape")
        # a free dim (None) stays free: `batch` at axis 0, `<input>_dim<k>` elsewhere
        dims = [int(d) if d is not None else ("batch" if k == 0 else f"{name}_dim{k}") for k, d in enumerate(shape)]
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        return name

    def _channels_first(self, name, cls, x, first, build):
        """Run `build(x_nchw) -> out_nchw` in NCHW, wrapping NHWC data in Transposes."""
        if first:
            return build(x)
        t = self._node("Transpose", [x], [f"{name}/to_nchw"], name, cls, perm=[0, 3, 1, 2])
        y = build(t)
        return self._node("Transpose", [y], [f"{name}/to_nhwc"], name, cls, perm=[0, 2, 3, 1])

    def _convolution2d(self, name, cls, c, xs, first, sources):
        ws = self.weights.get(name, [])
        kernel = ws[0]
        bias = ws[1] if len(ws) > 1 and c.get("bias", c.get("use_bias", True)) else None
        if self.k1:
            strides = list(c.get("subsample", (1, 1)))
            padding = c.get("border_mode", "valid")
            stored = "OIHW" if first else "HWIO"
        else:
            strides = list(c.get("strides", (1, 1)))
            padding = c.get("padding", "valid")
            stored = "HWIO"  # Keras 2 stores kernels (kh, kw, in, out) in both data formats
        dil = list(c.get("dilation_rate", (1, 1)))
        w = self._init(f"{name}/kernel", kernel, stored + ("+flip" if self.flip else ""))
        wv = w
        if self.flip:  # a Theano kernel convolves: as a correlation it is rotated by 180 degrees
            h, wi = stored.index("H"), stored.index("W")
            st = self._init(f"{name}/flip_starts", np.array([-1, -1], np.int64))
            en = self._init(f"{name}/flip_ends", np.array([-(2**62)] * 2, np.int64))
            ax = self._init(f"{name}/flip_axes", np.array([h, wi], np.int64))
            sp = self._init(f"{name}/flip_steps", np.array([-1, -1], np.int64))
            wv = self._node("Slice", [w, st, en, ax, sp], [f"{name}/kernel_flipped"], name, cls)
        if stored != "OIHW":
            wv = self._node("Transpose", [wv], [f"{name}/kernel_oihw"], name, cls,
                            perm=[stored.index(ch) for ch in "OIHW"])
        ins = [wv] + ([self._init(f"{name}/bias", bias)] if bias is not None else [])
        kh, kw = (kernel.shape[2:] if stored == "OIHW" else kernel.shape[:2])
        attrs = {"strides": strides, "dilations": dil, "kernel_shape": [int(kh), int(kw)]}
        if padding == "same":
            attrs["auto_pad"] = "SAME_UPPER"
        return self._channels_first(name, cls, xs[0], first,
                                    lambda x: self._node("Conv", [x, *ins], [f"{name}/conv"], name, cls, **attrs))

    _conv2d = _convolution2d

    def _dense(self, name, cls, c, xs, first, sources):
        ws = self.weights.get(name, [])
        w = self._init(f"{name}/kernel", ws[0])  # [in, out]: MatMul's own layout
        y = self._node("MatMul", [xs[0], w], [f"{name}/matmul"], name, cls)
        if len(ws) > 1 and c.get("bias", c.get("use_bias", True)):
            y = self._node("Add", [y, self._init(f"{name}/bias", ws[1])], [f"{name}/add"], name, cls)
        return y

    def _pool(self, name, cls, c, xs, first, op):
        pool = list(c.get("pool_size", (2, 2)))
        strides = list(c.get("strides") or pool)
        padding = c.get("border_mode", c.get("padding", "valid"))
        attrs = {"kernel_shape": pool, "strides": strides}
        if padding == "same":
            attrs["auto_pad"] = "SAME_UPPER"
        return self._channels_first(name, cls, xs[0], first,
                                    lambda x: self._node(op, [x], [f"{name}/pool"], name, cls, **attrs))

    def _maxpooling2d(self, name, cls, c, xs, first, sources):
        return self._pool(name, cls, c, xs, first, "MaxPool")

    def _averagepooling2d(self, name, cls, c, xs, first, sources):
        return self._pool(name, cls, c, xs, first, "AveragePool")

    def _zeropadding2d(self, name, cls, c, xs, first, sources):
        p = c.get("padding", (1, 1))
        if isinstance(p, int):
            (t, b), (l_, r) = (p, p), (p, p)
        elif isinstance(p[0], (list, tuple)):
            (t, b), (l_, r) = p
        elif len(p) == 4:
            t, b, l_, r = p
        else:
            (t, b), (l_, r) = (p[0], p[0]), (p[1], p[1])
        pads = [0, 0, t, l_, 0, 0, b, r] if first else [0, t, l_, 0, 0, b, r, 0]
        return self._node("Pad", [xs[0], self._init(f"{name}/pads", np.array(pads, np.int64))],
                          [f"{name}/pad"], name, cls)

    def _flatten(self, name, cls, c, xs, first, sources):
        # flattens the data in the layout it is held in: th -> C,H,W order; tf -> H,W,C order
        return self._node("Flatten", [xs[0]], [f"{name}/flatten"], name, cls, axis=1)

    def _dropout(self, name, cls, c, xs, first, sources):
        return self._node("Identity", [xs[0]], [f"{name}/identity"], name, cls)

    def _activation(self, name, cls, c, xs, first, sources):
        act = c.get("activation", "linear")
        if act == "linear":
            return self._node("Identity", [xs[0]], [f"{name}/identity"], name, cls)
        return self._apply_activation(name, cls, act, xs[0])

    def _batchnormalization(self, name, cls, c, xs, first, sources):
        ws = self.weights.get(name, [])
        n = ws[-1].shape[0]
        if self.k1:
            gamma, beta, mean, var = ws
        else:
            it = iter(ws)
            gamma = next(it) if c.get("scale", True) else np.ones(n, np.float32)
            beta = next(it) if c.get("center", True) else np.zeros(n, np.float32)
            mean, var = next(it), next(it)
        eps = float(c.get("epsilon", 1e-3))
        ins = [self._init(f"{name}/{k}", v) for k, v in
               (("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", var))]
        return self._channels_first(name, cls, xs[0], first,
                                    lambda x: self._node("BatchNormalization", [x, *ins], [f"{name}/bn"],
                                                         name, cls, epsilon=eps))

    def _merge(self, name, cls, c, xs, first, sources):
        mode = c.get("mode", "sum")
        if mode == "sum":
            return self._node("Sum", xs, [f"{name}/sum"], name, cls)
        if mode == "mul":
            return self._node("Mul", xs, [f"{name}/mul"], name, cls)
        if mode == "concat":
            return self._node("Concat", xs, [f"{name}/concat"], name, cls, axis=int(c.get("concat_axis", -1)))
        raise UnsupportedError(f"{self.path}: layer {name}: Merge mode {mode!r} is not supported")

    def _add(self, name, cls, c, xs, first, sources):
        return self._node("Sum", xs, [f"{name}/sum"], name, cls)

    def _multiply(self, name, cls, c, xs, first, sources):
        return self._node("Mul", xs, [f"{name}/mul"], name, cls)

    def _concatenate(self, name, cls, c, xs, first, sources):
        return self._node("Concat", xs, [f"{name}/concat"], name, cls, axis=int(c.get("axis", -1)))
