"""Why does a layer differ? The classic porting mistakes, tried on the first divergent layer.

When `verify(..., layerwise=True)` finds the first layer over tolerance, every layer before it
matched, so that layer's inputs are right and the fault is in the layer itself. `diagnose` reruns
just that layer (its ONNX nodes, on onnxruntime) with each classic mistake undone: a kernel
reshaped instead of transposed, transposed the wrong way or flipped 180 degrees, a Dense weight
with its axes swapped or its rows in the other flatten order, colour channels reversed on the
first layer, BatchNorm statistics not divided by Caffe's scale factor, pooling that rounds the
other way. The first fix that makes the layer match the reference names the cause:

    conv1: weights were reshaped, not transposed: use w.transpose(3, 2, 0, 1)

Each mistake is one `Cause` in CAUSES: which node input (or attribute) it applies to, the fix
as a function of the layer's weight and context, and the hint. Adding one is one entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import onnx_ir as ir

from .. import provenance
from .onnx_runner import run_nodes


@dataclasses.dataclass
class Context:
    """What a fix may look at: the node, the weight being fixed, the layer's data input."""

    layer: str
    node: ir.Node
    weight: np.ndarray
    data: np.ndarray | None  # the node's first (data) input, as the candidate computed it
    data_is_graph_input: bool
    flatten_shape: tuple | None  # (C, H, W) flattened before this Dense, if it follows a Flatten
    expected: np.ndarray  # the reference's output of the layer
    values: Mapping[str, np.ndarray]
    factor: float = 1.0  # set by the BatchNorm cause: the factor it estimated


@dataclasses.dataclass
class Cause:
    name: str
    ops: tuple[str, ...]  # node types it applies to
    input: int | None  # the node input it fixes (None: the node's attributes)
    fix: Callable[[Context], np.ndarray | dict | None]  # the undone mistake; None: not applicable
    hint: Callable[[Context], str]


def _conv_ok(c: Context) -> bool:
    return c.weight.ndim == 4


def _dense(c: Context) -> np.ndarray:
    """The Dense weight as (in, out), whatever the node's convention."""
    w = c.weight
    return w.T if c.node.op_type == "Gemm" and _attr(c.node, "transB", 0) else w


def _dense_back(c: Context, in_out: np.ndarray) -> np.ndarray:
    return in_out.T if c.node.op_type == "Gemm" and _attr(c.node, "transB", 0) else in_out


def _attr(node: ir.Node, name: str, default):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _reshaped_dense(c: Context):
    """A (in, out) matrix reshaped to the (out, in) the node wants, or the reverse."""
    w = c.weight
    if w.ndim != 2 or w.shape[0] == w.shape[1]:
        return None  # a square reshape is the identity: the swapped-axes cause covers it
    return w.reshape(w.shape[::-1]).T


def _flatten_order(to_channels_first: bool):
    def fix(c: Context):
        if c.flatten_shape is None or _dense(c).ndim != 2:
            return None
        ch, h, w = c.flatten_shape
        if h * w == 1 or ch == 1:
            return None
        rows = _dense(c)
        if rows.shape[0] != ch * h * w:
            return None
        if to_channels_first:  # rows are (h, w, c) but the graph flattens (c, h, w)
            fixed = rows.reshape(h, w, ch, -1).transpose(2, 0, 1, 3).reshape(ch * h * w, -1)
        else:
            fixed = rows.reshape(ch, h, w, -1).transpose(1, 2, 0, 3).reshape(ch * h * w, -1)
        return _dense_back(c, fixed)
    return fix


def _flatten_hint(to_channels_first: bool):
    def hint(c: Context) -> str:
        ch, h, w = c.flatten_shape
        if to_channels_first:
            return (f"{c.layer}: its weight rows follow a channels-last flatten order (H, W, C) but the input is "
                    f"flattened channels-first (C, H, W): permute them: "
                    f"w.reshape({h}, {w}, {ch}, -1).transpose(2, 0, 1, 3).reshape({ch * h * w}, -1)")
        return (f"{c.layer}: its weight rows follow a channels-first flatten order (C, H, W) but the input is "
                f"flattened channels-last (H, W, C): permute them: "
                f"w.reshape({ch}, {h}, {w}, -1).transpose(1, 2, 0, 3).reshape({ch * h * w}, -1)")
    return hint


def _batchnorm_factor(c: Context):
    """Caffe stores BatchNorm sums and a factor to divide them by: estimate a forgotten factor from
    the reference (per channel, y = g (x - m) / sqrt(v + eps) + b has slope g / sqrt(v + eps))."""
    x, y = c.data, c.expected
    if x is None or x.ndim < 2 or x.shape != y.shape:
        return None
    g = c.values[c.node.inputs[1].name]
    v = c.values[c.node.inputs[4].name]
    eps = _attr(c.node, "epsilon", 1e-5)
    axes = (0, *range(2, x.ndim))
    xc, yc = x - x.mean(axis=axes, keepdims=True), y - y.mean(axis=axes, keepdims=True)
    slope = (xc * yc).sum(axis=axes) / np.maximum((xc * xc).sum(axis=axes), 1e-30)
    true_v = (g / np.where(slope == 0, np.inf, slope)) ** 2 - eps
    factor = float(np.median(v / np.maximum(true_v, 1e-30)))
    if not np.isfinite(factor) or abs(factor - 1) < 1e-3:
        return None
    c.factor = factor
    return {3: c.values[c.node.inputs[3].name] / factor, 4: v / factor}


def _pool_rounding(c: Context):
    return {"ceil_mode": 1 - _attr(c.node, "ceil_mode", 0)}


CAUSES = [
    Cause("reshaped-not-transposed", ("Conv",), 1,
          lambda c: c.weight.reshape(c.weight.shape[2], c.weight.shape[3], c.weight.shape[1], c.weight.shape[0])
          .transpose(3, 2, 0, 1) if _conv_ok(c) else None,
          lambda c: f"{c.layer}: weights were reshaped, not transposed: use w.transpose(3, 2, 0, 1)"),
    Cause("flipped-kernel", ("Conv",), 1,
          lambda c: c.weight[:, :, ::-1, ::-1] if _conv_ok(c) else None,
          lambda c: (f"{c.layer}: the kernel is flipped 180 degrees (a Theano-trained true convolution): "
                     "use w[:, :, ::-1, ::-1]")),
    Cause("kernel-rows-columns-swapped", ("Conv",), 1,
          lambda c: c.weight.transpose(0, 1, 3, 2) if _conv_ok(c) and c.weight.shape[2] == c.weight.shape[3] else None,
          lambda c: (f"{c.layer}: the kernel's rows and columns are swapped: from HWIO use w.transpose(3, 2, 0, 1), "
                     "not w.transpose(3, 2, 1, 0)")),
    Cause("kernel-in-out-swapped", ("Conv",), 1,
          lambda c: c.weight.transpose(1, 0, 2, 3) if _conv_ok(c) and c.weight.shape[0] == c.weight.shape[1] else None,
          lambda c: f"{c.layer}: the kernel's input and output channels are swapped: use w.transpose(1, 0, 2, 3)"),
    Cause("rgb-bgr", ("Conv",), 1,
          lambda c: c.weight[:, ::-1] if _conv_ok(c) and c.weight.shape[1] == 3 and c.data_is_graph_input else None,
          lambda c: (f"{c.layer}: the input's colour channels are in the other order (RGB vs BGR): reverse the "
                     "kernel's input channels, w[:, ::-1], or the images' channels")),
    Cause("dense-axes-swapped", ("Gemm", "MatMul"), 1,
          lambda c: c.weight.T if c.weight.ndim == 2 and c.weight.shape[0] == c.weight.shape[1] else None,
          lambda c: f"{c.layer}: the Dense weight's input and output axes are swapped: use w.T"),
    Cause("dense-reshaped-not-transposed", ("Gemm", "MatMul"), 1, _reshaped_dense,
          lambda c: f"{c.layer}: weights were reshaped, not transposed: use w.T"),
    Cause("flatten-order-hwc", ("Gemm", "MatMul"), 1, _flatten_order(True), _flatten_hint(True)),
    Cause("flatten-order-chw", ("Gemm", "MatMul"), 1, _flatten_order(False), _flatten_hint(False)),
    Cause("batchnorm-scale-factor", ("BatchNormalization",), None, _batchnorm_factor,
          lambda c: (f"{c.layer}: the BatchNorm mean and variance are {c.factor:.6g}x too large: divide them by "
                     "Caffe's moving-average factor (the layer's third blob)")),
    Cause("pool-rounding", ("MaxPool", "AveragePool"), None, _pool_rounding,
          lambda c: (f"{c.layer}: the reference's pooling rounds its output size "
                     f"{'up (ceil_mode=True, as Caffe does)' if _attr(c.node, 'ceil_mode', 0) == 0 else 'down (ceil_mode=False)'}"
                     f"; set ceil_mode={'True' if _attr(c.node, 'ceil_mode', 0) == 0 else 'False'}")),
]


def diagnose(model: ir.Model, layer: str, output: str, values: Mapping[str, np.ndarray],
             expected: np.ndarray, ok: Callable[[np.ndarray], bool]) -> str | None:
    """The hint of the first classic mistake whose fix makes `layer` of `model` produce `expected`.

    `values`: the candidate's values (inputs of the layer among them); `output`: the value holding
    the layer's output in `model`; `ok(array)`: whether an output matches the reference."""
    nodes = [n for n in model.graph if n.metadata_props.get(provenance.SOURCE) == layer]
    if not nodes:
        return None
    consts = {v.name: v.const_value.numpy() for n in nodes for v in n.inputs
              if v is not None and v.const_value is not None}
    feeds = {**{k: v for k, v in values.items()}, **consts}
    graph_inputs = {v.name for v in model.graph.inputs}
    for node in nodes:
        for cause in CAUSES:
            if node.op_type not in cause.ops:
                continue
            if cause.input is not None and (len(node.inputs) <= cause.input or node.inputs[cause.input] is None
                                            or node.inputs[cause.input].name not in feeds):
                continue
            data = node.inputs[0]
            ctx = Context(layer, node, feeds[node.inputs[cause.input].name] if cause.input is not None else None,
                          feeds.get(data.name) if data is not None else None,
                          data is not None and data.name in graph_inputs, _flatten_shape(node, values),
                          np.asarray(expected), feeds)
            fixed = cause.fix(ctx)
            if fixed is None:
                continue
            inputs = {cause.input: fixed} if cause.input is not None else \
                {k: v for k, v in fixed.items() if isinstance(k, int)}
            attrs = {} if cause.input is not None else {k: v for k, v in fixed.items() if isinstance(k, str)}
            try:
                got = run_nodes(model, nodes, output, feeds, node, inputs, attrs)
            except Exception:  # noqa: BLE001 - a fix that makes the layer invalid is simply not it
                continue
            if got is not None and got.shape == ctx.expected.shape and ok(got):
                return cause.hint(ctx)
    return None


def _flatten_shape(node: ir.Node, values: Mapping[str, np.ndarray]) -> tuple | None:
    """(C, H, W) of the 4-D tensor flattened (Flatten or Reshape, maybe after a Transpose) into
    this node's data input."""
    v = node.inputs[0]
    producer = v.producer() if v is not None else None
    if producer is None or producer.op_type not in ("Flatten", "Reshape"):
        return None
    src = producer.inputs[0]
    before = producer.inputs[0].producer()
    if before is not None and before.op_type == "Transpose":  # NCHW -> NHWC before a channels-last flatten
        src = before.inputs[0]
    if src.name not in values or values[src.name].ndim != 4:
        return None
    return tuple(values[src.name].shape[1:])
