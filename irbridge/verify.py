"""Reference runs, comparison, layerwise search and reports (DESIGN.md §6).

`verify(a, b)` runs `a` (the reference) and `b` side by side on the same seeded random inputs
and compares every output elementwise: |b - a| <= atol + rtol * |a|, with
atol = 1e-5 * max(1, max|a|) and rtol = 1e-4 unless given. With `layerwise=True` every source
layer's output is compared too, and the first layer over tolerance is reported with a hint.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping

import numpy as np
import onnx
import onnx_ir as ir

from . import formats, provenance
from .errors import InputError

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL_SCALE = 1e-5


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Check:
    """One compared tensor: a model output or a layer's output."""

    name: str
    max_abs: float
    max_rel: float
    ok: bool
    atol: float
    local_max_abs: float | None = None  # layerwise: error of the layer fed the reference's inputs
    note: str | None = None

    def to_dict(self) -> dict:
        d = {"name": self.name, "max_abs": self.max_abs, "max_rel": self.max_rel, "ok": self.ok}
        if self.local_max_abs is not None:
            d["local_max_abs"] = self.local_max_abs
        if self.note:
            d["note"] = self.note
        return d


@dataclasses.dataclass
class Divergence:
    layer: str
    max_abs: float
    max_rel: float
    hint: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VerificationReport:
    ok: bool
    atol: float | None  # None: the default, 1e-5 * max(1, max|reference|) per output
    rtol: float
    outputs: list[Check]
    layers: list[Check] = dataclasses.field(default_factory=list)
    first_divergence: Divergence | None = None

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for c in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for c in self.outputs), default=0.0)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "atol": self.atol if self.atol is not None else DEFAULT_ATOL_SCALE,
            "rtol": self.rtol,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "outputs": [c.to_dict() for c in self.outputs],
            "layers": [c.to_dict() for c in self.layers],
            "first_divergence": self.first_divergence.to_dict() if self.first_divergence else None,
        }

    def to_html(self, title: str = "irbridge verification") -> str:
        """One self-contained HTML page: per-layer error plot (log scale) and the tables."""
        from .report_html import to_html

        return to_html(self, title)

    def __str__(self) -> str:
        atol = f"{self.atol:g}" if self.atol is not None else "1e-5*max(1,max|ref|)"
        head = "MATCH" if self.ok else "MISMATCH"
        lines = [f"verification: {head} (atol={atol}, rtol={self.rtol:g})"]
        for c in self.outputs:
            lines.append(f"  output {c.name}: max_abs={c.max_abs:.3g} max_rel={c.max_rel:.3g} "
                         f"{'ok' if c.ok else 'FAIL'}" + (f" ({c.note})" if c.note else ""))
        if self.layers:
            bad = sum(not c.ok for c in self.layers)
            lines.append(f"  layers compared: {len(self.layers)}, over tolerance: {bad}")
        if self.first_divergence:
            d = self.first_divergence
            lines.append(f"  first divergence: layer {d.layer} (max_abs={d.max_abs:.3g}, max_rel={d.max_rel:.3g})")
            if d.hint:
                lines.append(f"  hint: {d.hint}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------
def compare(name: str, ref: np.ndarray, got: np.ndarray, atol: float | None = None,
            rtol: float | None = None) -> Check:
    """Elementwise comparison by DESIGN.md §6 (integers and bools exact, NaN/inf in place)."""
    ref, got = np.asarray(ref), np.asarray(got)
    rtol = DEFAULT_RTOL if rtol is None else rtol
    if ref.shape != got.shape:
        return Check(name, float("inf"), float("inf"), False, atol or 0.0,
                     note=f"shape {got.shape} != reference {ref.shape}")
    if ref.size == 0:
        return Check(name, 0.0, 0.0, True, atol or 0.0)
    if ref.dtype.kind in "biuUSO" or got.dtype.kind in "biu":
        diff = (ref != got) if ref.dtype.kind in "bUSO" else np.abs(ref.astype(np.float64) - got.astype(np.float64))
        max_abs = float(np.max(diff))
        return Check(name, max_abs, max_abs, max_abs == 0, 0.0)
    r, g = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(r)
    same_special = np.array_equal(np.isnan(r), np.isnan(g)) and np.array_equal(
        np.where(np.isinf(r), r, 0), np.where(np.isinf(g), g, 0))
    r_f, g_f = r[finite], g[finite]
    if r_f.size == 0:
        return Check(name, 0.0, 0.0, same_special, atol or 0.0)
    eff_atol = atol if atol is not None else DEFAULT_ATOL_SCALE * max(1.0, float(np.max(np.abs(r_f))))
    err = np.abs(g_f - r_f)
    err = np.where(np.isnan(err), np.inf, err)
    max_abs = float(np.max(err))
    max_rel = float(np.max(err / np.maximum(np.abs(r_f), 1e-12)))
    ok = bool(np.all(err <= eff_atol + rtol * np.abs(r_f))) and same_special
    return Check(name, max_abs, max_rel, ok, eff_atol)


def hint(ref: np.ndarray, got: np.ndarray) -> str | None:
    """A likely cause of a mismatch, judged from the two tensors alone."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    if ref.shape != got.shape:
        if ref.size == got.size:
            return (f"same number of elements, shape {got.shape} vs {ref.shape}: a layout "
                    "(NCHW/NHWC) or flatten-order difference")
        return f"shape {got.shape} vs reference {ref.shape}"
    if ref.size < 2 or not np.all(np.isfinite(got)):
        return None if np.all(np.isfinite(got)) else "non-finite values where the reference has none"
    close = lambda a, b: np.allclose(a, b, rtol=1e-3, atol=1e-5 * max(1.0, np.abs(b).max()))  # noqa: E731
    if ref.ndim >= 3:
        for perm in itertools.permutations(range(1, ref.ndim)):
            perm = (0,) + perm
            if perm != tuple(range(ref.ndim)) and got.shape == ref.transpose(perm).shape \
                    and close(got, ref.transpose(perm)):
                return f"the values are the reference's with axes permuted {perm}: a layout (NCHW/NHWC) mix-up"
    if close(np.sort(got, axis=None), np.sort(ref, axis=None)):
        return ("the same values in a different order: a layout or flatten-order permutation "
                "(a Dense/InnerProduct after a Flatten needs its weight rows permuted)")
    if ref.ndim >= 3:
        axes = tuple(range(2, ref.ndim))
        delta = got - ref
        if close(delta, delta.mean(axis=axes, keepdims=True)) and np.abs(delta).max() > 0:
            return "a per-channel offset: a bias, mean subtraction or BatchNorm statistic differs"
    nz = np.abs(ref) > 1e-6
    if nz.sum() > 1:
        ratio = got[nz] / ref[nz]
        if np.allclose(ratio, ratio.mean(), rtol=1e-3) and abs(ratio.mean() - 1) > 1e-3:
            return f"outputs are {ratio.mean():.4g}x the reference: a scale (input scaling, LRN alpha/size convention, BatchNorm scale factor)"
    delta = got - ref
    if np.allclose(delta, delta.mean(), rtol=1e-3, atol=1e-6) and abs(delta.mean()) > 0:
        return f"a constant offset of {delta.mean():.4g}: mean subtraction or a bias"
    if (ref < 0).any() and not (got < 0).any():
        return "no negative values where the reference has some: an extra ReLU, or a clamp"
    return None


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def random_inputs(specs: list[tuple[str, tuple, np.dtype]], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal floats (never constant), small non-negative ints, random bools."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape, dtype in specs:
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[name] = rng.integers(0, 4, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[name] = rng.random(shape) < 0.5
        else:
            raise InputError(f"cannot make random values for input {name!r} of type {dtype}; pass inputs.")
    return feeds


def input_specs(model: ir.Model, shapes: Mapping[str, tuple] | None = None) -> list[tuple[str, tuple, np.dtype]]:
    """(name, shape, dtype) of each graph input; symbolic dims become 1 unless `shapes` says."""
    shapes = dict(shapes or {})
    specs = []
    for v in model.graph.inputs:
        if v.name in model.graph.initializers:
            continue
        if v.name in shapes:
            shape = tuple(int(d) for d in shapes[v.name])
        elif v.shape is None:
            raise InputError(f"input {v.name!r} has no shape in the model; give one with --input {v.name}:D1,D2,...")
        else:
            shape = tuple(d if isinstance(d, int) else 1 for d in v.shape)
        dtype = v.dtype.numpy() if v.dtype is not None else np.float32
        specs.append((v.name, shape, dtype))
    return specs


# --------------------------------------------------------------------------------------------
# Runners: something that maps {input name: array} to {output name: array}
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Runner:
    input_names: list[str]
    output_names: list[str]
    run: Callable[[dict], dict]
    specs: list | None = None
    values: Callable[..., dict] | None = None  # (feeds, reference values=None) -> {onnx value: array}
    layer_map: dict[str, str] | None = None  # {source layer: onnx value holding its output}
    local: bool = False  # values() can feed each node the reference's inputs (local error)
    close: Callable[[], None] | None = None  # frees what run() holds (e.g. onnxruntime's weights)
    model: ir.Model | None = None  # the ONNX graph run, when there is one (diagnosis reruns its layers)


def onnx_runner(model: ir.Model) -> Runner:

    names_in = [v.name for v in model.graph.inputs if v.name not in model.graph.initializers]
    names_out = [v.name for v in model.graph.outputs]
    session = {}  # created on the first run, dropped by close(): one copy of the weights at a time

    to_file, from_file = _interface_layouts(model)

    def file_feeds(feeds):
        return {k: feeds[k].transpose(to_file[k]) if k in to_file else feeds[k] for k in names_in}

    def run(feeds):
        if not session:
            session["s"], session["weights"] = _model_session(model)
        outs = session["s"].run(names_out, {**file_feeds(feeds), **session["weights"]})
        return {n: o.transpose(from_file[n]) if n in from_file else o for n, o in zip(names_out, outs)}

    def values(feeds, reference=None):
        extra = [n for n in _all_value_names(model) if n not in names_out]
        p = _in_memory_proto(model)
        for n in extra:
            p.graph.output.append(onnx.ValueInfoProto(name=n))
        s = _session(p)
        outs = dict(zip([o.name for o in p.graph.output], s.run(None, file_feeds(feeds))))
        if reference is None:
            return outs
        return _local_values(model, {**feeds, **outs}, reference)

    specs = [(n, _canonical_shape(s, to_file.get(n)), d)
             for n, s, d in input_specs(model)]
    return Runner(names_in, names_out, run, specs, values, layer_outputs(model), local=True, close=session.clear,
                  model=model)


def _local_values(model: ir.Model, own: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict:
    """Each layer's output when its nodes alone run on the reference's values of their inputs
    (the candidate's own where the reference has no value of that name): the local error."""
    by_layer: dict[str, list] = {}
    for node in model.graph:
        layer = node.metadata_props.get(provenance.SOURCE)
        if layer:
            by_layer.setdefault(layer, []).append(node)
    feeds = {**own, **{k: v for k, v in reference.items() if k in own}}
    out = {}
    for layer, value in layer_outputs(model).items():
        try:
            got = run_nodes(model, by_layer.get(layer, []), value, feeds)
        except Exception:  # noqa: BLE001 - a layer that cannot run alone keeps no local error
            got = None
        if got is not None:
            out[value] = got
    return out


def run_nodes(model: ir.Model, nodes: list, output: str, feeds: Mapping[str, np.ndarray], target=None,
              inputs: Mapping[int, np.ndarray] | None = None, attributes: Mapping | None = None) -> np.ndarray | None:
    """Run `nodes` of `model` alone on onnxruntime and return `output`; their inputs come from
    `feeds` or the model's initializers. `target`'s inputs (by index) and attributes can be replaced."""
    produced = {o.name for n in nodes for o in n.outputs}
    if output not in produced:
        return None
    protos, inits, seen = [], [], set()
    for n in nodes:
        p = ir.serde.serialize_node(n)
        if n is target:
            for name, value in (attributes or {}).items():
                for a in list(p.attribute):
                    if a.name == name:
                        p.attribute.remove(a)
                p.attribute.append(onnx.helper.make_attribute(name, value))
        protos.append(p)
        for i, v in enumerate(n.inputs):
            if v is None or v.name in produced or v.name in seen:
                continue
            seen.add(v.name)
            if n is target and inputs and i in inputs:
                array = inputs[i]
            elif v.const_value is not None:
                array = v.const_value.numpy()
            elif v.name in feeds:
                array = feeds[v.name]
            else:
                return None
            inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(array), v.name))
    graph = onnx.helper.make_graph(protos, "layer", [], [onnx.ValueInfoProto(name=output)], inits)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid(d, v)
                                                         for d, v in model.opset_imports.items()])
    proto.ir_version = max(model.ir_version or 8, 8)
    return _session(proto).run(None, {})[0]


def _canonical_shape(shape: tuple, to_file: list[int] | None) -> tuple:
    """The NCHW shape of an input stored channels-last (to_file maps NCHW -> file order)."""
    if to_file is None:
        return shape
    inverse = np.argsort(to_file)
    return tuple(shape[i] for i in inverse)


_CHANNELS_LAST = {"NWC": [0, 2, 1], "NHWC": [0, 2, 3, 1], "NDHWC": [0, 2, 3, 4, 1]}


def _interface_layouts(model: ir.Model) -> tuple[dict, dict]:
    """Graph inputs/outputs marked channels-last (irbridge.layout): the permutations from the
    canonical NCHW order into the file's order (inputs) and back (outputs)."""
    to_file = {v.name: _CHANNELS_LAST[v.metadata_props[provenance.LAYOUT]] for v in model.graph.inputs
               if v.metadata_props.get(provenance.LAYOUT) in _CHANNELS_LAST}
    from_file = {v.name: list(np.argsort(_CHANNELS_LAST[v.metadata_props[provenance.LAYOUT]]))
                 for v in model.graph.outputs if v.metadata_props.get(provenance.LAYOUT) in _CHANNELS_LAST}
    return to_file, from_file


def _in_memory_proto(model: ir.Model) -> onnx.ModelProto:
    """The model as a proto with every weight inline (onnxruntime cannot resolve external
    data of a model given as bytes)."""
    proto = ir.to_proto(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        inline = model.clone()
        for v in inline.graph.initializers.values():
            if isinstance(v.const_value, ir.ExternalTensor):
                v.const_value = ir.Tensor(v.const_value.numpy(), name=v.name)
        proto = ir.to_proto(inline)
    return proto


def _session(proto: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - a model newer than onnxruntime's IR: say the newest it takes
        import re

        newest = re.search(r"Unsupported model IR version: \d+, max supported IR version: (\d+)", str(e))
        if newest is None:
            raise
        proto.ir_version = int(newest.group(1))
        return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _model_session(model: ir.Model):
    """(session, weight feeds) for `model`. Its large weights become graph inputs fed at run time:
    onnxruntime reads them where they lie (e.g. the mapped source file) instead of copying them,
    and models over protobuf's 2 GB limit need no temporary file."""
    from .exporters.onnx import split_large_weights

    proto, large = split_large_weights(model)
    proto.graph.input.extend(onnx.helper.make_tensor_value_info(name, header.data_type, header.dims)
                             for name, (header, _) in large.items())
    return _session(proto), {name: tensor.numpy() for name, (_, tensor) in large.items()}


def layer_outputs(model: ir.Model) -> dict[str, str]:
    """{source layer: the ONNX value holding its output}, in graph order (last node wins)."""
    out: dict[str, str] = {}
    for node in model.graph:
        if not node.outputs or not node.outputs[0].name:
            continue
        out.pop(provenance.source_of(node), None)
        out[provenance.source_of(node)] = node.outputs[0].name
    return out


def _all_value_names(model: ir.Model) -> list[str]:
    return [o.name for node in model.graph for o in node.outputs if o.name]


def torch_runner(gm) -> Runner:
    """Runner over a GraphModule made by irbridge's PyTorch exporter."""
    import torch

    names_in, names_out = gm.irbridge_inputs, gm.irbridge_outputs

    def to_torch(feeds):
        return [torch.from_numpy(np.array(feeds[n])) for n in names_in]

    def run(feeds):
        with torch.no_grad():
            out = gm(*to_torch(feeds))
        out = out if isinstance(out, tuple) else (out,)
        return {n: _np(o) for n, o in zip(names_out, out)}

    by_node = {node_name: value for value, node_name in gm.irbridge_values.items()}

    def values(feeds, reference=None):
        captured: dict[str, np.ndarray] = {}

        class Capture(torch.fx.Interpreter):
            def run_node(self, n):
                if reference is not None and n.op in ("call_module", "call_function", "call_method"):
                    args, kwargs = self.fetch_args_kwargs_from_env(n)
                    args = _substitute(args, n.args, by_node, reference, torch)
                    result = getattr(self, n.op)(n.target, args, kwargs)
                else:
                    result = super().run_node(n)
                if n.name in by_node and isinstance(result, torch.Tensor):
                    # a copy: a later in-place layer (ReLU(inplace=True)) may overwrite it
                    captured[by_node[n.name]] = np.array(_np(result))
                return result

        with torch.no_grad():
            Capture(gm).run(*to_torch(feeds))
        return captured

    return Runner(names_in, names_out, run, getattr(gm, "irbridge_specs_in", None), values,
                  gm.irbridge_layers, local=True)


def _substitute(args, arg_nodes, by_node, reference, torch):
    """Replace arguments that are graph values the reference also computed by its values."""
    import torch.fx as fx

    def sub(a, n):
        if isinstance(n, fx.Node) and by_node.get(n.name) in reference:
            return torch.from_numpy(np.array(reference[by_node[n.name]]))
        if isinstance(n, (list, tuple)) and isinstance(a, (list, tuple)):
            return type(a)(sub(x, y) for x, y in zip(a, n))
        return a

    return tuple(sub(a, n) for a, n in zip(args, arg_nodes))


def module_runner(module, names_in: list[str]) -> Runner:
    """Runner over a plain torch.nn.Module (the source framework itself)."""
    import torch

    def run(feeds):
        modes = {m: m.training for m in module.modules()}
        module.eval()
        try:
            with torch.no_grad():
                out = module(*[torch.from_numpy(np.array(feeds[n])) for n in names_in])
        finally:
            for m, t in modes.items():
                m.training = t
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {f"output_{i}": _np(o) for i, o in enumerate(out)}

    return Runner(list(names_in), [], run)


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def keras_runner(km, meta: dict) -> Runner:
    """Runner over a Keras model made by irbridge: canonical (NCHW) feeds are laid out as the
    model holds its inputs, and outputs are brought back to the ONNX order."""
    names_in = [n for n, _ in meta["inputs"]]
    names_out = [n for n, _ in meta["outputs"]]

    def run(feeds):
        xs = [np.ascontiguousarray(feeds[n].transpose(p)) for n, p in meta["inputs"]]
        out = km(xs if len(xs) > 1 else xs[0], training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        return {n: np.asarray(o).transpose(np.argsort(p)) for (n, p), o in zip(meta["outputs"], out)}

    def values(feeds, reference=None):
        import keras

        names = [n for n in meta["values"] if n not in names_in]
        probe = keras.Model(km.inputs, [meta["values"][n][0] for n in names])
        xs = [np.ascontiguousarray(feeds[n].transpose(p)) for n, p in meta["inputs"]]
        outs = probe(xs if len(xs) > 1 else xs[0], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return {n: np.asarray(o).transpose(np.argsort(meta["values"][n][1])) for n, o in zip(names, outs)}

    return Runner(names_in, names_out, run, None, values, meta["layers"])


def tf_runner(module) -> Runner:
    """Runner over irbridge's frozen TF module: feeds laid out channels-last and, when the
    module bakes in Caffe preprocessing, turned into the raw RGB images that give them."""
    meta = module.irbridge_info
    mean = None if module._mean is None else module._mean.numpy()

    def run(feeds):
        xs = []
        for n, p in meta["inputs"]:
            x = np.ascontiguousarray(feeds[n].transpose(p))
            if mean is not None:
                x = np.ascontiguousarray((x + mean)[..., ::-1])  # preprocess(raw) == x
            xs.append(x)
        out = module.serving_default(*xs)
        return {n: np.asarray(out[n]).transpose(np.argsort(p)) for n, p in meta["outputs"]}

    return Runner([n for n, _ in meta["inputs"]], [n for n, _ in meta["outputs"]], run)


def runner_for(obj, names_in: list[str] | None = None) -> Runner:
    if isinstance(obj, Runner):
        return obj
    if hasattr(obj, "irbridge_info") and hasattr(obj, "serving_default"):
        return tf_runner(obj)
    if type(obj).__module__.split(".")[0] == "keras":
        from .exporters.keras import info

        meta = info(obj)
        if meta is not None:
            return keras_runner(obj, meta)
    if hasattr(obj, "irbridge_values"):
        return torch_runner(obj)
    if isinstance(obj, (ir.Model, onnx.ModelProto, str, os.PathLike)):
        from .importers import load

        return onnx_runner(load(obj) if not isinstance(obj, ir.Model) else obj)
    if formats._is_torch_module(obj):
        if names_in is None:
            raise InputError("comparing two plain torch modules needs the input names; pass an ONNX side")
        return module_runner(obj, names_in)
    from .importers import load

    return onnx_runner(load(obj))


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------
def verify(a, b, *, inputs=None, layerwise: bool = False, atol: float | None = None,
           rtol: float | None = None, seed: int = 0) -> VerificationReport:
    """Run reference `a` and candidate `b` on the same inputs and compare (DESIGN.md §6).

    `inputs`: {name: array} to use as they are, {name: shape} for seeded random values of
    that shape, or None for seeded random values of the model's input shapes.
    """
    ra = runner_for(a)
    rb = runner_for(b, ra.input_names)
    if not isinstance(a, Runner) and ra.specs is None and rb.specs is not None:
        ra = runner_for(a, rb.input_names)
    feeds = make_feeds(ra if ra.specs else rb, inputs, seed)
    out_a = ra.run(feeds)
    if not layerwise and ra.close is not None:
        ra.close()
    out_b = rb.run(feeds)
    report = compare_outputs(out_a, out_b, atol, rtol, first_divergence=not layerwise)
    if layerwise:
        _layerwise(report, ra, rb, feeds, atol, rtol)
    return report


def compare_outputs(out_a: dict, out_b: dict, atol=None, rtol=None, first_divergence: bool = True) -> VerificationReport:
    """The report of outputs `out_b` against reference outputs `out_a` (matched in order)."""
    rtol = DEFAULT_RTOL if rtol is None else rtol
    names_a, names_b = list(out_a), list(out_b)
    if len(names_a) != len(names_b):
        raise InputError(f"the models have different numbers of outputs ({len(names_a)} vs {len(names_b)})")
    checks = [compare(nb, out_a[na], out_b[nb], atol, rtol) for na, nb in zip(names_a, names_b)]
    report = VerificationReport(all(c.ok for c in checks), atol, rtol, checks)
    if first_divergence and not report.ok:
        i = next(i for i, c in enumerate(checks) if not c.ok)
        report.first_divergence = Divergence(checks[i].name, checks[i].max_abs, checks[i].max_rel,
                                             hint(out_a[names_a[i]], out_b[names_b[i]]))
    return report


@dataclasses.dataclass
class Reference:
    """A reference model's outputs on given inputs, computed once: convert runs it before the
    export, then unmaps the reference's weights, so the two never share the memory peak."""

    feeds: dict
    outputs: dict
    input_names: list


def reference_run(a, inputs=None, seed: int = 0) -> Reference:
    ra = runner_for(a)
    feeds = make_feeds(ra, inputs, seed)
    try:
        outputs = ra.run(feeds)
    except Exception as e:
        if type(e).__module__.startswith("onnxruntime"):
            raise InputError(f"onnxruntime cannot run the graph the check compares against: "
                             f"{str(e).splitlines()[0]} (--no-check skips the check)") from e
        raise
    if ra.close is not None:
        ra.close()
    if isinstance(a, ir.Model):
        from ._io import release_mapped

        release_mapped(a.graph.initializers.values())
    return Reference(feeds, outputs, ra.input_names)


def verify_against(ref: Reference, b, atol=None, rtol=None) -> VerificationReport:
    """Run candidate `b` on the reference's inputs and compare with its outputs."""
    return compare_outputs(ref.outputs, runner_for(b, ref.input_names).run(ref.feeds), atol, rtol)


def make_feeds(runner: Runner, inputs, seed: int = 0) -> dict[str, np.ndarray]:
    if inputs is not None and all(hasattr(v, "shape") and hasattr(v, "dtype") for v in dict(inputs).values()):
        return {k: np.asarray(v) for k, v in dict(inputs).items()}
    shapes = dict(inputs) if inputs is not None else None
    specs = runner.specs
    if specs is None:
        raise InputError("no input shapes known; pass inputs={name: shape}")
    if shapes:
        specs = [(n, tuple(shapes.get(n, s)), d) for n, s, d in specs]
    return random_inputs(specs, seed)


def _layerwise(report: VerificationReport, ra: Runner, rb: Runner, feeds, atol, rtol) -> None:
    """Compare every layer of the candidate's layer map with the reference's value of the same
    name (or, for another lineage of graph, the reference's value for the same layer)."""
    if ra.values is None or rb.values is None:
        raise InputError("layerwise comparison needs both sides to be ONNX graphs or irbridge exports")
    ref_values = ra.values(feeds)  # one reference run serves both the layers and local feeding
    got_values = rb.values(feeds)
    local = rb.values(feeds, ref_values) if rb.local else {}
    for layer, v in (rb.layer_map or ra.layer_map or {}).items():
        ref_v = v if v in ref_values else (ra.layer_map or {}).get(layer)
        if ref_v not in ref_values or v not in got_values:
            continue
        ref = ref_values[ref_v]
        c = compare(layer, ref, got_values[v], atol, rtol)
        if v in local:
            c.local_max_abs = compare(layer, ref, local[v], atol, rtol).max_abs
        report.layers.append(c)
        if not c.ok and report.first_divergence is None:
            why = None
            if rb.model is not None:  # try the classic mistakes on this layer (irbridge.diagnose)
                from .diagnose import diagnose

                why = diagnose(rb.model, layer, v, {**feeds, **got_values}, ref,
                               lambda out, ref=ref, layer=layer: compare(layer, ref, out, atol, rtol).ok)
            report.first_divergence = Divergence(layer, c.max_abs, c.max_rel, why or hint(ref, got_values[v]))
    if report.first_divergence is None and not report.ok:
        bad = next(c for c in report.outputs if not c.ok)
        report.first_divergence = Divergence(bad.name, bad.max_abs, bad.max_rel, None)


# `irbridge.verify` is both this module and the public function (DESIGN.md §2 and §4). Importing
# the submodule rebinds the package attribute to the module, so the module itself is callable.
class _CallableModule(type(os)):
    def __call__(self, *args, **kwargs):
        return verify(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
