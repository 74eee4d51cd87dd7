"""Diagnosis: each classic porting mistake, injected into a correct model, is named by the hint
of `verify --layerwise`; a correct model gets no hint."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import irbridge

R = np.random.default_rng(7)
W = {"conv1": R.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
     "conv2": R.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2,
     "fc1": R.standard_normal((10, 8 * 7 * 7)).astype(np.float32) * 0.05,
     "fc2": R.standard_normal((10, 10)).astype(np.float32) * 0.3,
     "bn_mean": R.standard_normal(8).astype(np.float32) * 0.1,
     "bn_var": R.uniform(0.5, 2, 8).astype(np.float32),
     "bn_gamma": R.uniform(0.5, 1.5, 8).astype(np.float32),
     "bn_beta": R.standard_normal(8).astype(np.float32) * 0.1}


def build(weights=None, ceil_mode=1, upto="fc2") -> onnx.ModelProto:
    """A Caffe-style little net: conv1, bn1, pool1 (ceil), conv2, flatten, fc1, fc2; provenance set.
    `upto`: the last layer (its output is the graph's)."""
    w = {**W, **(weights or {})}
    layers = [
        ("conv1", helper.make_node("Conv", ["x", "conv1.w"], ["conv1"], pads=[1, 1, 1, 1])),
        ("bn1", helper.make_node("BatchNormalization", ["conv1", "bn.g", "bn.b", "bn.m", "bn.v"], ["bn1"])),
        ("relu1", helper.make_node("Relu", ["bn1"], ["relu1"])),
        ("pool1", helper.make_node("MaxPool", ["relu1"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2],
                                   ceil_mode=ceil_mode)),
        ("conv2", helper.make_node("Conv", ["pool1", "conv2.w"], ["conv2"], pads=[1, 1, 1, 1])),
        ("flatten", helper.make_node("Flatten", ["conv2"], ["flatten"])),
        ("fc1", helper.make_node("Gemm", ["flatten", "fc1.w"], ["fc1"], transB=1)),
        ("fc2", helper.make_node("Gemm", ["fc1", "fc2.w"], ["fc2"], transB=1)),
    ]
    layers = layers[: [name for name, _ in layers].index(upto) + 1]
    used = {i for _, n in layers for i in n.input}
    for name, node in layers:
        node.name = name
        node.metadata_props.add(key="irbridge.source", value=name)
    inits = [numpy_helper.from_array(np.ascontiguousarray(a), n) for n, a in (
        ("conv1.w", w["conv1"]), ("conv2.w", w["conv2"]), ("fc1.w", w["fc1"]), ("fc2.w", w["fc2"]),
        ("bn.g", w["bn_gamma"]), ("bn.b", w["bn_beta"]), ("bn.m", w["bn_mean"]), ("bn.v", w["bn_var"]))
        if n in used]
    graph = helper.make_graph([n for _, n in layers], "net",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 13, 13])],
                              [helper.make_empty_tensor_value_info(upto)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _flatten_hwc(w):  # rows of fc1 in (H, W, C) order instead of (C, H, W)
    return w.T.reshape(8, 7, 7, 10).transpose(1, 2, 0, 3).reshape(392, 10).T


FACTOR = 999.98
# cause: (the weights a user ended up with, or a build option), the layer, words the hint must hold
INJECTED = {
    "reshaped-not-transposed": ({"conv1": W["conv1"].transpose(2, 3, 1, 0).reshape(8, 3, 3, 3)}, "conv1",
                                "conv1: weights were reshaped, not transposed: use w.transpose(3, 2, 0, 1)"),
    "flipped-kernel": ({"conv1": W["conv1"][:, :, ::-1, ::-1]}, "conv1", "flipped 180 degrees"),
    "kernel-rows-columns-swapped": ({"conv1": W["conv1"].transpose(0, 1, 3, 2)}, "conv1", "rows and columns"),
    "kernel-in-out-swapped": ({"conv2": W["conv2"].transpose(1, 0, 2, 3)}, "conv2", "input and output channels"),
    "rgb-bgr": ({"conv1": W["conv1"][:, ::-1]}, "conv1", "RGB vs BGR"),
    "batchnorm-scale-factor": ({"bn_mean": W["bn_mean"] * FACTOR, "bn_var": W["bn_var"] * FACTOR}, "bn1",
                               "999.98x too large"),
    "pool-rounding": ("floor", "pool1", "ceil_mode=True"),
    "flatten-order": ({"fc1": _flatten_hwc(W["fc1"])}, "fc1", "channels-last flatten order"),
    "dense-reshaped-not-transposed": ({"fc1": W["fc1"].T.reshape(10, 392)}, "fc1", "reshaped, not transposed: use w.T"),
    "dense-axes-swapped": ({"fc2": W["fc2"].T}, "fc2", "axes are swapped"),
}


@pytest.mark.parametrize("cause", list(INJECTED))
def test_each_injected_mistake_is_named(cause):
    change, layer, words = INJECTED[cause]
    if change == "floor":  # a pooling that rounds down: the net is cut there (its size changes)
        good, bad = build(upto="pool1"), build(ceil_mode=0, upto="pool1")
    else:
        good, bad = build(), build(change)
    report = irbridge.verify(good, bad, layerwise=True)
    assert not report.ok
    d = report.first_divergence
    assert d.layer == layer
    assert d.hint is not None and words in d.hint and d.hint.startswith(f"{layer}:"), d.hint


def test_a_correct_model_gets_no_hint():
    report = irbridge.verify(build(), build(), layerwise=True)
    assert report.ok and report.first_divergence is None


def test_an_unknown_fault_is_not_blamed_on_a_classic_cause():
    noise = W["conv2"] + np.random.default_rng(1).standard_normal(W["conv2"].shape).astype(np.float32) * 0.1
    report = irbridge.verify(build(), build({"conv2": noise}), layerwise=True)
    d = report.first_divergence
    assert d.layer == "conv2"
    assert d.hint is None or not any(words in d.hint for _, _, words in INJECTED.values())


def test_html_report_plots_every_layer_and_marks_the_first_divergence(tmp_path):
    import html.parser

    import onnx as _onnx

    from irbridge.cli import main

    _onnx.save(build(), tmp_path / "good.onnx")
    _onnx.save(build(INJECTED["flipped-kernel"][0]), tmp_path / "bad.onnx")
    code = main(["verify", str(tmp_path / "good.onnx"), str(tmp_path / "bad.onnx"), "--layerwise",
                 "--report", str(tmp_path / "report.html")])
    assert code == 1
    page = (tmp_path / "report.html").read_text()

    class Collect(html.parser.HTMLParser):
        tags, texts, links = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.links += [v for k, v in attrs if k in ("src", "href") and v]

        def handle_data(self, data):
            self.texts.append(data)

    p = Collect()
    p.feed(page)
    text = " ".join(p.texts)
    assert not p.links and "<script" not in page  # self-contained: nothing loaded from anywhere
    assert p.tags.count("polyline") == 3  # accumulated, local, tolerance
    for layer in ("conv1", "bn1", "pool1", "conv2", "fc1", "fc2"):
        assert layer in text
    assert "first divergence: conv1" in text and "flipped 180 degrees" in text
    assert "MISMATCH" in text and "fc2" in text  # the outputs table
    assert not list(tmp_path.glob("*.tmp*"))


def _tiny_vit_files(tmp_path, style):
    """A tiny transformers ViT (random weights, nothing downloaded) exported by torch.onnx in
    `style`, and a copy with the first attention layer's query weight stored transposed.
    Returns (good, bad, the query projection's module path as the source model names it)."""
    import contextlib
    import io
    import warnings

    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from irbridge.exporters.torch import hierarchy

    torch.manual_seed(0)
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37, image_size=32, patch_size=8, num_labels=5)
    vit = transformers.ViTForImageClassification(cfg).eval()
    query = next(name for name, _ in vit.named_modules()
                 if name.rsplit(".", 1)[-1] in ("query", "q_proj") and ".0." in name)
    good, bad = tmp_path / f"vit_{style}.onnx", tmp_path / f"vit_{style}_bad.onnx"
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if style == "dynamo":
            torch.onnx.export(vit, (x,), dynamo=True, input_names=["pixel_values"], opset_version=18,
                              dynamic_shapes={"pixel_values": {0: "batch"}}).save(str(good))
        else:
            torch.onnx.export(vit, (x,), str(good), input_names=["pixel_values"], opset_version=17,
                              dynamic_axes={"pixel_values": {0: "batch"}}, dynamo=False)
    model = onnx.load(good)
    inits = {i.name: i for i in model.graph.initializer}
    props = {n.name: {p.key: p.value for p in n.metadata_props} for n in model.graph.node}
    node = next(n for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and query in (
        hierarchy.scope_path(n.name), hierarchy.dynamo_path(props[n.name].get(hierarchy.SCOPES))))
    weight = inits[next(i for i in node.input if i in inits)]
    w = numpy_helper.to_array(weight)
    assert w.shape[0] == w.shape[1] and not node.name.startswith(query)  # square: still runs; not named so
    weight.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w.T), weight.name))
    onnx.save(model, bad)
    return good, bad, query


@pytest.mark.parametrize("style", ["torchscript", "dynamo"])
def test_foreign_vit_divergence_is_named_by_module_path(tmp_path, style, capsys):
    """A ViT exported elsewhere carries no irbridge provenance: the layer is named from the
    file's own records (TorchScript's node-name scopes, dynamo's name_scopes), not `node_MatMul_29`."""
    from irbridge.cli import main

    good, bad, query = _tiny_vit_files(tmp_path, style)
    hint = f"{query}: the Dense weight's input and output axes are swapped: use w.T"
    if style == "dynamo":  # through the API
        d = irbridge.verify(str(good), str(bad), layerwise=True).first_divergence
        assert d.layer == query and d.hint == hint, (d.layer, d.hint)
        return
    assert main(["verify", str(good), str(bad), "--layerwise"]) == 1  # through the CLI
    out = capsys.readouterr().out
    assert f"first divergence: layer {query} " in out and f"hint: {hint}" in out, out
