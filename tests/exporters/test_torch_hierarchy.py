"""The exported module tree mirrors the source's: a torchvision-style ResNet's own state_dict
loads strictly into the model converted from its ONNX export (dynamo and TorchScript), and the
saved model.py reads as a person writes it (self.layer1[0].conv1, momentum=0.1)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import assert_close, ort_run


def _export(torch, model, path, dynamo: bool):
    x = torch.randn(2, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            # optimize=False: the default optimizer folds each BatchNorm into its Conv, and the
            # file then no longer holds the checkpoint's bn keys
            torch.onnx.export(model, (x,), path, dynamo=True, optimize=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        else:
            torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"],
                              training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                              dynamic_axes={"x": {0: "batch"}})


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_resnet_checkpoint_loads_strictly(dynamo, torch, tmp_path):
    import onnx

    import irbridge
    from irbridge.exporters.torch import load_saved
    from models.torch_resnet import resnet

    source = resnet(width=8, num_classes=10)
    _export(torch, source, tmp_path / "m.onnx", dynamo)
    gm = irbridge.export(irbridge.normalize(irbridge.load(tmp_path / "m.onnx")), "torch", check=False)
    gm.load_state_dict(source.state_dict(), strict=True)
    assert isinstance(gm.get_submodule("layer1.0.conv1"), torch.nn.Conv2d)
    assert isinstance(gm.get_submodule("layer2.0.downsample.1"), torch.nn.BatchNorm2d)

    irbridge.save(gm, tmp_path / "out")
    text = (tmp_path / "out" / "model.py").read_text()
    assert "self.layer1[0].conv1(" in text and "self.layer2[0].downsample[1](" in text
    assert "momentum=0.1)" in text and "0.0999999" not in text
    assert "layer1_0_conv1 = " in text  # variables named after layers
    again = load_saved(tmp_path / "out")
    again.load_state_dict(source.state_dict(), strict=True)  # the written model.py too

    proto = onnx.load(tmp_path / "m.onnx")
    for batch in (2, 3):  # the batch stays free
        x = np.random.default_rng(batch).standard_normal((batch, 3, 64, 64)).astype(np.float32)
        ref = ort_run(proto, {proto.graph.input[0].name: x})[0]
        with torch.no_grad():
            assert_close(again(torch.from_numpy(x)).numpy(), ref)
            assert_close(source(torch.from_numpy(x)).numpy(), ref)


def test_scope_paths():
    from irbridge.exporters.torch.hierarchy import dynamo_path, scope_path

    assert scope_path("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert scope_path("/m/vit/encoder/layer.0/attention/attention/query/MatMul") == \
        "m.vit.encoder.layer.0.attention.attention.query"
    assert scope_path("/Relu") is None and scope_path("node_MatMul_29") is None
    assert dynamo_path("['', 'features', 'features.0', 'conv2d']") == "features.0"
    assert dynamo_path("['', 'view']") is None
