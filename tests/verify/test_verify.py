"""Verification: tolerance semantics, hints, layerwise first divergence."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from irbridge.models import onnx_zoo

import irbridge
from irbridge.verify import compare, hint, random_inputs
from tests.conftest import seeded


def test_tolerance_scales_with_the_reference_magnitude():
    ref = np.array([1000.0, -2000.0], np.float32)
    assert compare("y", ref, ref + 0.01).ok  # atol = 1e-5 * 2000 = 0.02
    assert not compare("y", ref, ref + 0.5).ok


def test_integers_must_match_exactly_and_nan_in_the_same_places():
    assert not compare("i", np.array([1, 2]), np.array([1, 3])).ok
    assert compare("f", np.array([np.nan, 1.0]), np.array([np.nan, 1.0])).ok
    assert not compare("f", np.array([np.nan, 1.0]), np.array([0.0, 1.0])).ok


def test_random_inputs_are_seeded_and_never_constant():
    a = random_inputs([("x", (2, 3), np.float32)], seed=7)["x"]
    b = random_inputs([("x", (2, 3), np.float32)], seed=7)["x"]
    np.testing.assert_array_equal(a, b)
    assert np.unique(a).size == a.size


def test_hints_name_the_usual_porting_traps():
    x = seeded((1, 4, 3, 5))
    assert "permuted" in hint(x, np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(x.shape)) \
        or "order" in hint(x, np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(x.shape))
    assert "0.5x" in hint(x, x * 0.5)
    assert "per-channel" in hint(x, x + np.arange(4, dtype=np.float32).reshape(1, 4, 1, 1))
    assert "negative" in hint(x, np.maximum(x, 0))


def _break_layer(model: ir.Model, layer: str) -> ir.Model:
    """A copy of `model` whose layer's kernel has its spatial axes transposed (a layout bug)."""
    broken = model.clone()
    node = next(n for n in broken.graph if n.metadata_props.get("irbridge.source") == layer)
    w = node.inputs[1]
    w.const_value = ir.Tensor(np.ascontiguousarray(w.const_value.numpy().transpose(0, 1, 3, 2)), name=w.name)
    return broken


def test_layerwise_finds_the_first_divergent_layer(torch):
    ref = irbridge.normalize(irbridge.load(onnx_zoo.light_model("squeezenet", seed=0)))
    convs = [n.metadata_props["irbridge.source"] for n in ref.graph
             if n.op_type == "Conv" and n.inputs[1].shape[-1] > 1]  # 3x3: a transpose shows
    layer = convs[2]
    broken = _break_layer(ref, layer)
    rep = irbridge.verify(ref, irbridge.export(broken, "torch", check=False), layerwise=True)
    assert not rep.ok
    assert rep.first_divergence.layer == layer
    names = [c.name for c in rep.layers]
    assert names.index(layer) > names.index(convs[1])
    assert all(c.ok for c in rep.layers[: names.index(layer)])
    d = rep.to_dict()
    assert d["first_divergence"]["layer"] == layer
    assert layer in str(rep)


def test_local_error_isolates_the_faulty_layer(torch):
    ref = irbridge.normalize(irbridge.load(onnx_zoo.light_model("squeezenet", seed=0)))
    layer = next(n.metadata_props["irbridge.source"] for n in ref.graph
                 if n.op_type == "Conv" and n.inputs[1].shape[-1] > 1)
    broken = _break_layer(ref, layer)
    rep = irbridge.verify(ref, irbridge.export(broken, "torch", check=False), layerwise=True)
    by_name = {c.name: c for c in rep.layers}
    assert by_name[layer].local_max_abs > 1e-3
    later = [c for c in rep.layers if not c.ok and c.name != layer and c.local_max_abs is not None]
    assert later and all(c.local_max_abs < 1e-3 for c in later)  # downstream layers are fine locally


def test_export_check_raises_on_mismatch(torch, monkeypatch):
    ref = irbridge.normalize(irbridge.load(onnx_zoo.light_model("squeezenet", seed=0)))
    import irbridge.exporters as ex

    real = ex.export_raw
    monkeypatch.setattr(ex, "export_raw", lambda m, t: real(_break_layer(m, "conv1"), t))
    with pytest.raises(irbridge.VerificationError) as e:
        irbridge.export(ref, "torch")
    assert not e.value.report.ok


def test_an_output_that_is_the_same_for_every_input_is_called_out():
    """A head whose weights are all zero gives 0 for every input: the check says the match
    proves nothing (a model with the wrong weights would match too); a live output gets no note."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from tests.conftest import make_model

    rng = np.random.default_rng(4)
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["dead"]), helper.make_node("MatMul", ["x", "w1"], ["live"])]
    inits = [numpy_helper.from_array(np.zeros((6, 3), np.float32), "w0"),
             numpy_helper.from_array(rng.standard_normal((6, 3)).astype(np.float32), "w1")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                       [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("dead", "live")],
                       inits, opset=17)
    onnx.checker.check_model(model)
    report = irbridge.verify(model, model)
    assert report.ok
    dead = [n for n in report.notes if "'dead'" in n]
    assert dead and "proves nothing" in dead[0] and "is 0 everywhere" in dead[0], report.notes
    assert not [n for n in report.notes if "'live'" in n]
    assert "proves nothing" in str(report)
