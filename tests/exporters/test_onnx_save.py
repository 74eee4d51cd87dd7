"""Saving ONNX: weights past protobuf's 2 GB go to external data beside the file (the threshold
is lowered here so that the test stays small); such a model converts to PyTorch and back."""

from __future__ import annotations

import onnx
import onnx_ir as ir
from irbridge.models.onnx_zoo import light_model

import irbridge
from irbridge.exporters import onnx as onnx_exporter
from tests.conftest import assert_close, ort_run, seeded


def test_large_models_switch_to_external_data_and_round_trip(tmp_path, monkeypatch, torch):
    monkeypatch.setattr(onnx_exporter, "EXTERNAL_DATA_THRESHOLD", 1024)
    proto = light_model("squeezenet")
    irbridge.convert(proto, "onnx", tmp_path / "big.onnx")
    assert (tmp_path / "big.onnx.data").stat().st_size > 1024
    loaded = onnx.load(tmp_path / "big.onnx", load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in loaded.graph.initializer)

    x = {"data_0": seeded((1, 3, 224, 224), seed=2)}
    ref = ort_run(proto, x)[0]
    res = irbridge.convert(tmp_path / "big.onnx", "torch", tmp_path / "t")  # external tensors, mapped
    assert res.report.ok
    from irbridge.exporters.torch import load_saved

    back = irbridge.convert(load_saved(tmp_path / "t"), "onnx", tmp_path / "back.onnx",
                            inputs={"data_0": (1, 3, 224, 224)})
    assert back.report.ok and (tmp_path / "back.onnx.data").exists()
    model = ir.load(tmp_path / "back.onnx")
    from irbridge.verify import onnx_runner

    assert_close(next(iter(onnx_runner(model).run({model.graph.inputs[0].name: x["data_0"]}).values())), ref)
