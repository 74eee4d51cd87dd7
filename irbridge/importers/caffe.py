"""Caffe importer: deploy.prototxt (+ .caffemodel) -> ONNX, without Caffe.

Parsed with irbridge's own schema (caffe_schema). Caffe's semantics are kept exactly: pooling
output sizes round up (ceil) and drop a last window that would start in the padding, AVE
pooling divides by the window clipped to the padded input, InnerProduct flattens implicitly.
Shapes are tracked with Caffe's own rules while the graph is built. In-place layers
(top == bottom) get fresh value names so the graph stays SSA; provenance keeps Caffe's names.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from .. import provenance
from ..errors import InputError, UnsupportedError
from .caffe_blobs import read_caffemodel
from .caffe_schema import V1_TYPES, NetParameter

DROPPED = {"Accuracy", "SoftmaxWithLoss", "EuclideanLoss", "HingeLoss", "SigmoidCrossEntropyLoss",
           "InfogainLoss", "MultinomialLogisticLoss", "ContrastiveLoss", "Silence"}
DATA = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData"}


def load(source, weights=None, inputs=None):
    import onnx_ir as ir

    path = Path(os.fspath(source))
    if path.suffix == ".caffemodel":  # the trained net alone: structure and blobs from one file
        net, blobs = read_caffemodel(_existing(path))
    else:
        net, blobs = _parse_prototxt(_existing(path)), None
    if weights is not None:
        _, blobs = read_caffemodel(_existing(Path(os.fspath(weights))))
    b = _Builder(path, blobs, dict(inputs) if isinstance(inputs, dict) else {},
                 Path(os.fspath(weights)) if weights is not None else path)
    b.build(net)
    outputs = b.outputs()
    # initializers enter the proto as headers only; their arrays (views of the mapped caffemodel)
    # are attached to the IR afterwards, so the weights are never copied
    headers = [TensorProto(name=name, dims=a.shape, data_type=helper.np_dtype_to_tensor_dtype(a.dtype))
               for name, a in b.initializers.items()]
    graph = helper.make_graph(b.nodes, net.name or path.stem, b.inputs,
                              [helper.make_tensor_value_info(v, TensorProto.FLOAT, b.shapes[v]) for v in outputs],
                              headers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="irbridge")
    model.ir_version = 9
    m = ir.serde.deserialize_model(model)
    for name, array in b.initializers.items():
        m.graph.initializers[name].const_value = ir.Tensor(array, name=name)
    if blobs is None:
        m.metadata_props["irbridge.random_weights"] = "true"
    return m


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    return path


def _parse_prototxt(path: Path):
    from google.protobuf import text_format

    net = NetParameter()
    try:
        text_format.Parse(path.read_bytes().decode("utf-8", "replace"), net, allow_unknown_field=True)
    except Exception as e:  # noqa: BLE001 - text_format raises ParseError and friends
        raise InputError(f"{path}: not a readable Caffe prototxt: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    return net


def _layers(net):
    """(name, type, bottoms, tops, param-holder, blobs) for V2 `layer` and legacy V1 `layers`."""
    out = []
    for ly in net.layer:
        out.append((ly.name, ly.type, list(ly.bottom), list(ly.top), ly, list(ly.blobs), ly))
    for ly in net.layers:
        kind = ly.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number[ly.type].name
        out.append((ly.name, V1_TYPES.get(kind, kind), list(ly.bottom), list(ly.top), ly, list(ly.blobs), ly))
    return out


def _in_test_phase(ly) -> bool:
    if ly.include:
        return any(not r.HasField("phase") or r.phase == 1 for r in ly.include)
    if ly.exclude:
        return not any(r.HasField("phase") and r.phase == 1 for r in ly.exclude)
    return True


def _pair(p, name: str, h: str, w: str, default: int) -> tuple[int, int]:
    """Caffe's `name`/repeated `name` or `h`/`w` forms of a 2-D parameter."""
    if p.HasField(h) or p.HasField(w):
        return int(getattr(p, h)), int(getattr(p, w))
    values = list(getattr(p, name))
    if not values:
        return default, default
    return int(values[0]), int(values[-1])


class _Builder:
    def __init__(self, path: Path, blobs: dict | None, input_shapes: dict, weights_path: Path | None = None):
        self.path, self.input_shapes = path, input_shapes
        self.random = blobs is None  # a prototxt alone: seeded random weights
        self.blobs = blobs or {}
        self.missing: list[str] = []  # layers the caffemodel holds no blobs for
        self.weights_path = weights_path or path  # the file the blobs come from, for messages
        self.nodes, self.inputs = [], []
        self.initializers: dict[str, np.ndarray] = {}
        self.shapes: dict[str, list[int]] = {}
        self.blob_shapes: dict[str, list[list[int]]] = {}  # layer -> the blob shapes it reads
        self.current: dict[str, str] = {}  # Caffe blob name -> ONNX value now holding it
        self.read: set[str] = set()
        self.rng = np.random.default_rng(0)
        self._n = 0

    # --- helpers -------------------------------------------------------------------------------
    def fresh(self, name: str) -> str:
        self._n += 1
        return name if name not in self.shapes else f"{name}_{self._n}"

    def node(self, op, inputs, layer, kind, shape, out=None, **attrs):
        out = self.fresh(out or layer)
        self._provenance(helper.make_node(op, inputs, [out], name=f"{layer}/{op}_{len(self.nodes)}", **attrs),
                         layer, kind)
        self.shapes[out] = list(shape)
        return out

    def _provenance(self, node, layer, kind):
        node.metadata_props.add(key=provenance.SOURCE, value=layer)
        node.metadata_props.add(key=provenance.SOURCE_OP, value=kind)
        self.nodes.append(node)

    def const(self, name, array):
        name = self.fresh(name)
        array = np.asarray(array)
        self.initializers[name] = array if array.dtype == np.int64 else np.asarray(array, np.float32)
        self.shapes[name] = list(np.shape(array))
        return name

    def weights(self, layer, shapes, fan_in):
        """The layer's blobs from the caffemodel, or seeded He-scaled ones (prototxt alone)."""
        self.blob_shapes[layer] = [list(s) for s in shapes]
        got = self.blobs.get(layer)
        if got is not None:
            if len(got) < len(shapes) or any(g.size != int(np.prod(s)) for g, s in zip(got, shapes)):
                raise InputError(f"{self.path}: layer {layer}: the blobs in {self.weights_path.name} "
                                 f"{[list(g.shape) for g in got]} do not fit the prototxt's {shapes}.")
            return [g.reshape(s) for g, s in zip(got, shapes)]
        if not self.random:
            self.missing.append(layer)
        scale = math.sqrt(2.0 / max(fan_in, 1))
        return [(self.rng.standard_normal(s) * (scale if i == 0 else 0.1)).astype(np.float32)
                for i, s in enumerate(shapes)]

    def outputs(self) -> list[str]:
        """The values no layer reads, named after their Caffe tops (in-place chains renamed)."""
        inputs = {i.name for i in self.inputs}
        outs = []
        for blob, v in self.current.items():
            if v in self.read or v in inputs:
                continue
            if v != blob and blob not in inputs:
                if blob in self.shapes:  # an earlier value of an in-place chain holds the name
                    self._rename(blob, self.fresh(blob))
                self._rename(v, blob)
                v = blob
            outs.append(v)
        return outs

    def _rename(self, old: str, new: str) -> None:
        for n in self.nodes:
            for names in (n.input, n.output):
                for i, x in enumerate(names):
                    if x == old:
                        names[i] = new
        if old in self.initializers:
            self.initializers[new] = self.initializers.pop(old)
        self.shapes[new] = self.shapes.pop(old)

    # --- the net -------------------------------------------------------------------------------
    def build(self, net) -> None:
        for i, name in enumerate(net.input):
            if len(net.input_shape) > i:
                shape = list(net.input_shape[i].dim)
            elif len(net.input_dim) >= 4 * (i + 1):
                shape = list(net.input_dim[4 * i: 4 * i + 4])
            else:
                shape = list(self.input_shapes.get(name, ()))
            self._input(name, shape)
        layers = [ly for ly in _layers(net) if _in_test_phase(ly[6])]
        bad = [(n, t) for n, t, *_ in layers if not hasattr(self, "_" + t.lower()) and t not in DROPPED | DATA]
        python = [n for n, t, *_ in layers if t == "Python"]
        if bad:
            why = " Python layers run arbitrary code and are never imported." if python else ""
            raise UnsupportedError(f"{self.path}: {len(bad)} layer type(s) the Caffe importer does not "
                                   "convert: " + ", ".join(f"{n} ({t})" for n, t in bad) + "." + why,
                                   nodes=[n for n, _ in bad])
        for name, kind, bottoms, tops, params, _, _ in layers:
            if kind in DROPPED:
                continue
            if kind in DATA or kind == "Input":
                shapes = [list(s.dim) for s in params.input_param.shape] if kind == "Input" else []
                for k, top in enumerate(tops):
                    shape = shapes[min(k, len(shapes) - 1)] if shapes else list(self.input_shapes.get(top, ()))
                    self._input(top, shape, layer=name)
                continue
            missing = [b for b in bottoms if b not in self.current]
            if missing:
                raise InputError(f"{self.path}: layer {name} ({kind}) reads blob(s) {', '.join(missing)}, which no "
                                 "earlier layer or input produces; check the bottom/top names.", nodes=[name])
            xs = [self.current[b] for b in bottoms]
            self.read.update(xs)
            if kind == "Slice":
                for top, value in zip(tops, self._slice_tops(name, kind, params, xs, len(tops))):
                    self.current[top] = value
                continue
            out = getattr(self, "_" + kind.lower())(name, kind, params, xs)
            for top in tops:  # one top, or Split's copies of its bottom
                self.current[top] = out
        if self.missing:
            raise InputError(f"{self.path}: {self.weights_path.name} holds no weights for layer(s) {', '.join(self.missing)}; "
                             "check that it belongs to this prototxt (layer names must match), or pass "
                             "--random-weights to look at the structure alone.", nodes=self.missing)

    def _input(self, name, shape, layer=None):
        shape = list(self.input_shapes.get(name, shape))  # --input overrides the prototxt
        if not shape:
            raise InputError(f"{self.path}: input {name!r} has no shape (a Data layer?); give it with "
                             f"--input {name}:N,C,H,W")
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [int(d) for d in shape]))
        self.shapes[name] = [int(d) for d in shape]
        self.current[name] = name

    # --- layers (one method per Caffe type, named _<type lowercased>) ------------------------
    def _convolution(self, name, kind, params, xs):
        return self._conv(name, kind, params, xs, transposed=False)

    def _deconvolution(self, name, kind, params, xs):
        return self._conv(name, kind, params, xs, transposed=True)

    def _conv(self, name, kind, params, xs, transposed: bool):
        """Convolution, or Deconvolution (its blob is (inputs, outputs / group, kh, kw): ConvTranspose's
        own layout), with Caffe's output size rules."""
        p = params.convolution_param
        n, c, h, w = self.shapes[xs[0]]
        kh, kw = _pair(p, "kernel_size", "kernel_h", "kernel_w", 1)
        ph, pw = _pair(p, "pad", "pad_h", "pad_w", 0)
        sh, sw = _pair(p, "stride", "stride_h", "stride_w", 1)
        dh, dw = (int(p.dilation[0]), int(p.dilation[-1])) if p.dilation else (1, 1)
        g, o = int(p.group), int(p.num_output)
        kernel = [c, o // g, kh, kw] if transposed else [o, c // g, kh, kw]
        ws = self.weights(name, [kernel] + ([[o]] if p.bias_term else []), c // g * kh * kw)
        ins = [xs[0], self.const(f"{name}/weights", ws[0])] + ([self.const(f"{name}/bias", ws[1])] if p.bias_term else [])
        if transposed:
            oh, ow = (h - 1) * sh - 2 * ph + dh * (kh - 1) + 1, (w - 1) * sw - 2 * pw + dw * (kw - 1) + 1
        else:
            oh, ow = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1, (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
        return self.node("ConvTranspose" if transposed else "Conv", ins, name, kind, [n, o, oh, ow],
                         kernel_shape=[kh, kw], pads=[ph, pw, ph, pw], strides=[sh, sw], dilations=[dh, dw], group=g)

    def _slice(self, name, kind, params, xs):
        raise AssertionError("Slice is built in build(): it has several tops")

    def _slice_tops(self, name, kind, params, xs, n_tops):
        p = params.slice_param
        shape = self.shapes[xs[0]]
        axis = (int(p.axis) if p.HasField("axis") or not p.HasField("slice_dim") else int(p.slice_dim)) % len(shape)
        points = [0, *map(int, p.slice_point), shape[axis]]
        if not p.slice_point:
            step = shape[axis] // n_tops
            points = [i * step for i in range(n_tops)] + [shape[axis]]
        sizes = [b - a for a, b in zip(points, points[1:])]
        outs = [self.fresh(f"{name}_{i}") for i in range(len(sizes))]
        node = helper.make_node("Split", [xs[0], self.const(f"{name}/sizes", np.array(sizes, np.int64))], outs,
                                name=f"{name}/Split_{len(self.nodes)}", axis=axis)
        self._provenance(node, name, kind)
        for o, size in zip(outs, sizes):
            self.shapes[o] = shape[:axis] + [size] + shape[axis + 1:]
        return outs

    def _crop(self, name, kind, params, xs):
        p = params.crop_param
        src, ref = self.shapes[xs[0]], self.shapes[xs[1]]
        axis = int(p.axis) % len(src)
        offsets = list(p.offset) or [0]
        axes = list(range(axis, len(src)))
        starts = [int(offsets[0] if len(offsets) == 1 else offsets[i]) for i in range(len(axes))]
        ends = [s + ref[a] for s, a in zip(starts, axes)]
        ins = [xs[0]] + [self.const(f"{name}/{k}", np.array(v, np.int64)) for k, v in
                         (("starts", starts), ("ends", ends), ("axes", axes))]
        return self.node("Slice", ins, name, kind, src[:axis] + ref[axis:])

    def _pooling(self, name, kind, params, xs):
        p = params.pooling_param
        n, c, h, w = self.shapes[xs[0]]
        if p.global_pooling:
            op = "GlobalMaxPool" if p.pool == 0 else "GlobalAveragePool"
            return self.node(op, xs, name, kind, [n, c, 1, 1])
        if p.pool not in (0, 1):
            raise UnsupportedError(f"{self.path}: layer {name}: STOCHASTIC pooling (training only)", nodes=[name])
        kh, kw = _pair(p, "kernel_size", "kernel_h", "kernel_w", 1)
        ph, pw = _pair(p, "pad", "pad_h", "pad_w", 0)
        sh, sw = _pair(p, "stride", "stride_h", "stride_w", 1)
        oh, ow = caffe_pool_size(h, kh, ph, sh), caffe_pool_size(w, kw, pw, sw)
        eh, ew = (oh - 1) * sh + kh - h - ph, (ow - 1) * sw + kw - w - pw  # end pads ONNX needs
        pads = [ph, pw, max(eh, 0), max(ew, 0)]
        if p.pool == 0:
            return self.node("MaxPool", xs, name, kind, [n, c, oh, ow], kernel_shape=[kh, kw], pads=pads,
                             strides=[sh, sw])
        if eh <= ph and ew <= pw:  # no window reaches past the padding: ONNX counts as Caffe does
            return self.node("AveragePool", xs, name, kind, [n, c, oh, ow], kernel_shape=[kh, kw], pads=pads,
                             strides=[sh, sw], count_include_pad=1)
        # Caffe divides by the window clipped to the padded input: sum-pool, then that divisor
        total = self.node("AveragePool", xs, name, kind, [n, c, oh, ow], out=f"{name}/mean_over_full_window",
                          kernel_shape=[kh, kw], pads=pads, strides=[sh, sw], count_include_pad=1)
        divisor = caffe_ave_divisor(h, w, kh, kw, ph, pw, sh, sw, oh, ow)
        return self.node("Mul", [total, self.const(f"{name}/window_correction", (kh * kw / divisor)[None, None])],
                         name, kind, [n, c, oh, ow])

    def _innerproduct(self, name, kind, params, xs):
        p = params.inner_product_param
        shape = self.shapes[xs[0]]
        axis = int(p.axis) % len(shape)
        k = int(np.prod(shape[axis:]))
        o = int(p.num_output)
        x = xs[0]
        if len(shape) != axis + 1:  # Caffe flattens everything from `axis` implicitly
            x = self.node("Flatten", [x], name, kind, shape[:axis] + [k], out=f"{name}/flatten", axis=axis)
        wshape = [k, o] if p.transpose else [o, k]
        ws = self.weights(name, [wshape] + ([[o]] if p.bias_term else []), k)
        ins = [x, self.const(f"{name}/weights", ws[0])] + ([self.const(f"{name}/bias", ws[1])] if p.bias_term else [])
        return self.node("Gemm", ins, name, kind, shape[:axis] + [o], transB=0 if p.transpose else 1)

    def _relu(self, name, kind, params, xs):
        slope = float(params.relu_param.negative_slope)
        if slope:
            return self.node("LeakyRelu", xs, name, kind, self.shapes[xs[0]], alpha=slope)
        return self.node("Relu", xs, name, kind, self.shapes[xs[0]])

    def _sigmoid(self, name, kind, params, xs):
        return self.node("Sigmoid", xs, name, kind, self.shapes[xs[0]])

    def _tanh(self, name, kind, params, xs):
        return self.node("Tanh", xs, name, kind, self.shapes[xs[0]])

    def _affine_then(self, name, kind, x, scale, shift):
        """shift + scale * x, skipping the identity parts."""
        shape = self.shapes[x]
        if scale != 1.0:
            x = self.node("Mul", [x, self.const(f"{name}/scale", np.array(scale, np.float32))], name, kind, shape,
                          out=f"{name}/scaled")
        if shift != 0.0:
            x = self.node("Add", [x, self.const(f"{name}/shift", np.array(shift, np.float32))], name, kind, shape,
                          out=f"{name}/shifted")
        return x

    def _power(self, name, kind, params, xs):
        p = params.power_param
        y = self._affine_then(name, kind, xs[0], float(p.scale), float(p.shift))
        if float(p.power) == 1.0:
            return self.node("Identity", [y], name, kind, self.shapes[xs[0]])
        return self.node("Pow", [y, self.const(f"{name}/power", np.array(p.power, np.float32))], name, kind,
                         self.shapes[xs[0]])

    def _exp(self, name, kind, params, xs):
        p = params.exp_param
        base = float(p.base)
        ln_base = 1.0 if base == -1.0 else math.log(base)  # base^(shift + scale x) = e^(ln(base)(...))
        y = self._affine_then(name, kind, xs[0], float(p.scale) * ln_base, float(p.shift) * ln_base)
        return self.node("Exp", [y], name, kind, self.shapes[xs[0]])

    def _log(self, name, kind, params, xs):
        p = params.log_param
        y = self.node("Log", [self._affine_then(name, kind, xs[0], float(p.scale), float(p.shift))], name, kind,
                      self.shapes[xs[0]], out=f"{name}/ln")
        base = float(p.base)
        if base == -1.0:
            return y
        return self.node("Mul", [y, self.const(f"{name}/inv_ln_base", np.array(1 / math.log(base), np.float32))],
                         name, kind, self.shapes[xs[0]])

    def _absval(self, name, kind, params, xs):
        return self.node("Abs", xs, name, kind, self.shapes[xs[0]])

    def _bnll(self, name, kind, params, xs):
        return self.node("Softplus", xs, name, kind, self.shapes[xs[0]])  # log(1 + e^x)

    def _elu(self, name, kind, params, xs):
        return self.node("Elu", xs, name, kind, self.shapes[xs[0]], alpha=float(params.elu_param.alpha))

    def _prelu(self, name, kind, params, xs):
        shape = self.shapes[xs[0]]
        c = 1 if params.prelu_param.channel_shared else shape[1]
        slope = self.weights(name, [[c]], 1)[0]
        if self.random:
            slope = np.abs(slope)
        return self.node("PRelu", [xs[0], self.const(f"{name}/slope", slope.reshape([c] + [1] * (len(shape) - 2)))],
                         name, kind, shape)

    def _reshape(self, name, kind, params, xs):
        p = params.reshape_param
        src = self.shapes[xs[0]]
        axis = int(p.axis) % (len(src) + 1)
        end = len(src) if int(p.num_axes) == -1 else axis + int(p.num_axes)
        dims = [src[axis + i] if d == 0 else int(d) for i, d in enumerate(p.shape.dim)]
        new = src[:axis] + dims + src[end:]
        if -1 in new:
            known = int(np.prod([d for d in new if d != -1]))
            new[new.index(-1)] = int(np.prod(src)) // known
        return self.node("Reshape", [xs[0], self.const(f"{name}/shape", np.array(new, np.int64))], name, kind, new)

    def _lrn(self, name, kind, params, xs):
        p = params.lrn_param
        if p.norm_region == 1:  # WITHIN_CHANNEL: x / (1 + alpha * mean of x^2 over a size x size window)^beta
            size, shape = int(p.local_size), self.shapes[xs[0]]
            pad = (size - 1) // 2  # Caffe requires an odd size: every window then holds size^2 values
            sq = self.node("Mul", [xs[0], xs[0]], name, kind, shape, out=f"{name}/square")
            mean = self.node("AveragePool", [sq], name, kind, shape, out=f"{name}/window_mean",
                             kernel_shape=[size, size], pads=[pad] * 4, count_include_pad=1)
            den = self.node("Pow", [self._affine_then(name, kind, mean, float(p.alpha), 1.0),
                                    self.const(f"{name}/beta", np.array(p.beta, np.float32))],
                            name, kind, shape, out=f"{name}/denominator")
            return self.node("Div", [xs[0], den], name, kind, shape)
        return self.node("LRN", xs, name, kind, self.shapes[xs[0]], size=int(p.local_size), alpha=float(p.alpha),
                         beta=float(p.beta), bias=float(p.k))

    def _dropout(self, name, kind, params, xs):
        return self.node("Identity", xs, name, kind, self.shapes[xs[0]])

    def _softmax(self, name, kind, params, xs):
        return self.node("Softmax", xs, name, kind, self.shapes[xs[0]], axis=int(params.softmax_param.axis))

    def _concat(self, name, kind, params, xs):
        p = params.concat_param
        axis = int(p.axis) if p.HasField("axis") or not p.HasField("concat_dim") else int(p.concat_dim)
        shape = list(self.shapes[xs[0]])
        axis %= len(shape)
        shape[axis] = sum(self.shapes[x][axis] for x in xs)
        return self.node("Concat", xs, name, kind, shape, axis=axis)

    def _eltwise(self, name, kind, params, xs):
        p = params.eltwise_param
        shape = self.shapes[xs[0]]
        if p.operation == 0:  # PROD: Mul takes two operands at a time
            y = xs[0]
            for i, x in enumerate(xs[1:], 1):
                y = self.node("Mul", [y, x], name, kind, shape, out=None if i == len(xs) - 1 else f"{name}/prod{i}")
            return y
        if p.operation == 2:
            return self.node("Max", xs, name, kind, shape)
        coeffs = list(p.coeff) or [1.0] * len(xs)
        terms = [x if c == 1.0 else self.node("Mul", [x, self.const(f"{name}/coeff{i}", np.array(c, np.float32))],
                                              name, kind, shape, out=f"{name}/term{i}")
                 for i, (x, c) in enumerate(zip(xs, coeffs))]
        return self.node("Sum", terms, name, kind, shape)

    def _flatten(self, name, kind, params, xs):
        p = params.flatten_param
        shape = self.shapes[xs[0]]
        axis = int(p.axis) % len(shape)
        if int(p.end_axis) not in (-1, len(shape) - 1):
            raise UnsupportedError(f"{self.path}: layer {name}: Flatten with end_axis", nodes=[name])
        return self.node("Flatten", xs, name, kind, shape[:axis] + [int(np.prod(shape[axis:]))], axis=axis)

    def _split(self, name, kind, params, xs):
        return xs[0]  # every top is the bottom (build() hands it to all of them)

    def _batchnorm(self, name, kind, params, xs):
        shape = self.shapes[xs[0]]
        c = shape[1]
        ws = self.weights(name, [[c], [c], [1]], 1)
        if self.random:
            ws = [ws[0] * 0.1, np.abs(ws[1]) + 0.5, np.ones(1, np.float32)]
        factor = float(ws[2].reshape(-1)[0])
        scale = 0.0 if factor == 0 else 1.0 / factor  # Caffe stores sums; the third blob divides them
        eps = float(params.batch_norm_param.eps)
        ins = [xs[0], self.const(f"{name}/gamma", np.ones(c, np.float32)), self.const(f"{name}/beta", np.zeros(c, np.float32)),
               self.const(f"{name}/mean", ws[0] * scale), self.const(f"{name}/variance", ws[1] * scale)]
        return self.node("BatchNormalization", ins, name, kind, shape, epsilon=eps)

    def _param_shape(self, x, axis, num_axes):
        """Caffe's Scale/Bias parameter shape: `num_axes` axes of x from `axis` (-1: all the rest)."""
        shape = self.shapes[x]
        axis %= len(shape)
        end = len(shape) if num_axes == -1 else axis + num_axes
        return axis, shape[axis:end]

    def _broadcast(self, name, kind, op, x, operand, axis, out=None, label="operand"):
        """x (op) operand, the operand's axes lined up with x's from `axis` (Caffe's Scale/Bias).
        `operand` is a value name (a second bottom) or a blob array."""
        shape = self.shapes[x]
        pshape = list(np.shape(operand)) if isinstance(operand, np.ndarray) else self.shapes[operand]
        full = pshape + [1] * (len(shape) - axis - len(pshape))
        if isinstance(operand, np.ndarray):
            operand = self.const(f"{name}/{label}", operand.reshape(full))
        elif full != pshape:
            operand = self.node("Reshape", [operand, self.const(f"{name}/{label}_shape", np.array(full, np.int64))],
                                name, kind, full, out=f"{name}/{label}")
        return self.node(op, [x, operand], name, kind, shape, out=out)

    def _scale(self, name, kind, params, xs):
        p = params.scale_param
        if len(xs) > 1:  # the scale is the second bottom; a bias, if any, is the layer's only blob
            axis, pshape = self._param_shape(xs[0], int(p.axis), len(self.shapes[xs[1]]))
            scale, blobs = xs[1], self.weights(name, [pshape], 1) if p.bias_term else []
        else:
            axis, pshape = self._param_shape(xs[0], int(p.axis), int(p.num_axes))
            ws = self.weights(name, [pshape] + ([pshape] if p.bias_term else []), 1)
            if self.random:
                ws[0] = np.abs(ws[0]) + 0.5
            scale, blobs = ws[0], ws[1:]
        y = self._broadcast(name, kind, "Mul", xs[0], scale, axis, out=f"{name}/mul" if blobs else None, label="scale")
        if blobs:
            y = self._broadcast(name, kind, "Add", y, blobs[0], axis, label="bias")
        return y

    def _bias(self, name, kind, params, xs):
        p = params.bias_param
        if len(xs) > 1:
            axis, _ = self._param_shape(xs[0], int(p.axis), len(self.shapes[xs[1]]))
            return self._broadcast(name, kind, "Add", xs[0], xs[1], axis)
        axis, pshape = self._param_shape(xs[0], int(p.axis), int(p.num_axes))
        return self._broadcast(name, kind, "Add", xs[0], self.weights(name, [pshape], 1)[0], axis, label="bias")

    def _permute(self, name, kind, params, xs):
        shape = self.shapes[xs[0]]
        order = [int(a) for a in params.permute_param.order]
        order += [a for a in range(len(shape)) if a not in order]  # unnamed axes keep their order
        return self.node("Transpose", xs, name, kind, [shape[a] for a in order], perm=order)

    def _argmax(self, name, kind, params, xs):
        p = params.argmax_param
        shape, k = self.shapes[xs[0]], int(p.top_k)
        if p.HasField("axis"):  # values (out_max_val) or indices along one axis, same rank
            axis = int(p.axis) % len(shape)
            out = shape[:axis] + [k] + shape[axis + 1:]
            x, top_axis = xs[0], axis
        else:  # over each item's flattened values: (N, 1 or 2, k, 1...): indices, then values
            out = [shape[0], 2 if p.out_max_val else 1, k] + [1] * (len(shape) - 3)
            x = self.node("Flatten", xs, name, kind, [shape[0], int(np.prod(shape[1:]))], out=f"{name}/flat")
            top_axis = 1
        kshape = self.shapes[x][:top_axis] + [k] + self.shapes[x][top_axis + 1:]
        node = helper.make_node("TopK", [x, self.const(f"{name}/k", np.array([k], np.int64))],
                                [self.fresh(f"{name}/values"), self.fresh(f"{name}/indices")],
                                name=f"{name}/TopK_{len(self.nodes)}", axis=top_axis, largest=1, sorted=1)
        self._provenance(node, name, kind)
        values, indices = node.output
        self.shapes[values] = self.shapes[indices] = kshape
        if p.HasField("axis") and p.out_max_val:
            return self.node("Identity", [values], name, kind, out)
        idx = self.node("Cast", [indices], name, kind, kshape, out=f"{name}/index", to=TensorProto.FLOAT)
        parts = [idx, values] if p.out_max_val else [idx]
        if not p.HasField("axis"):
            parts = [self.node("Unsqueeze", [v, self.const(f"{name}/axis1", np.array([1], np.int64))], name, kind,
                               [shape[0], 1, k], out=f"{v}/unsqueezed") for v in parts]
        y = self.node("Concat", parts, name, kind, out[:3], axis=1, out=f"{name}/pairs") if len(parts) > 1 else parts[0]
        if self.shapes[y] != out:
            y = self.node("Reshape", [y, self.const(f"{name}/shape", np.array(out, np.int64))], name, kind, out)
        return y

def caffe_pool_size(size: int, k: int, pad: int, stride: int) -> int:
    """Caffe's pooled size: rounded up, minus a last window that would start in the padding."""
    out = int(math.ceil((size + 2 * pad - k) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def caffe_ave_divisor(h, w, kh, kw, ph, pw, sh, sw, oh, ow) -> np.ndarray:
    """Caffe AVE pooling's divisor per output: the window clipped to the padded input."""
    def clip(n, size, k, pad, s):
        start = np.arange(n) * s - pad
        return np.minimum(start + k, size + pad) - start

    return np.outer(clip(oh, h, kh, ph, sh), clip(ow, w, kw, pw, sw)).astype(np.float32)
