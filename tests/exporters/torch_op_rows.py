"""Shared runner for the per-family PyTorch op tables (test_torch_<family>.py).

A row is (id, op, attrs, inputs, n_outputs, opset): each input is a shape tuple (a graph
input fed seeded standard-normal floats), an np.ndarray (a constant initializer),
Feed(array) (a graph input fed that array) or None (an absent optional input). The one-node
model is exported to PyTorch and every output compared with onnxruntime (DESIGN.md §6).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tests.conftest import assert_close, make_model, ort_run


@dataclasses.dataclass
class Feed:
    """A graph input fed this exact array (integer indices, masks, ...)."""

    array: np.ndarray


def build(op, attrs, inputs, n_outputs=1, opset=18, domain=""):
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, spec in enumerate(inputs):
        if spec is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if isinstance(spec, np.ndarray):
            inits.append(numpy_helper.from_array(spec, name))
            continue
        value = spec.array if isinstance(spec, Feed) else \
            np.random.default_rng(i).standard_normal(spec).astype(np.float32)
        feeds[name] = value
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        graph_inputs.append(helper.make_tensor_value_info(name, elem, value.shape))
    while names and names[-1] == "":
        names.pop()
    outs = [f"out{k}" for k in range(n_outputs)]
    node = helper.make_node(op, names, outs, domain=domain, **attrs)
    model = make_model([node], graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs],
                       inits, opset=opset)
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return onnx.shape_inference.infer_shapes(model), feeds


def check(row, torch, reference=None):
    """Export the row's model to PyTorch; compare every output with onnxruntime, or with onnx's
    reference evaluator (`reference="onnx"`) where onnxruntime lacks the variant."""

    _id, op, attrs, inputs, n_outputs, opset = row
    model, feeds = build(op, attrs, inputs, n_outputs, opset)
    if reference == "onnx":
        from onnx.reference import ReferenceEvaluator

        ref = ReferenceEvaluator(model).run(None, feeds)
    else:
        ref = ort_run(model, feeds)
    return export_matches(model, feeds, ref, torch)


def export_matches(model, feeds, ref, torch):
    """Export `model` to PyTorch (unchecked: the caller holds the reference `ref`) and compare
    every output with it; returns the GraphModule."""
    import irbridge

    gm = irbridge.export(irbridge.normalize(irbridge.load(model)), "torch", check=False)
    with torch.no_grad():
        out = gm(*[torch.from_numpy(feeds[n]) for n in gm.irbridge_inputs])
    out = out if isinstance(out, tuple) else (out,)
    assert len(out) == len(ref)
    for got, r in zip(out, ref):
        assert_close(got.numpy(), r)
    return gm
