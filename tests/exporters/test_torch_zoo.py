"""The nine onnx-shipped zoo models, with seeded random weights, exported to PyTorch and
compared with onnxruntime; and PyTorch -> irbridge -> PyTorch round trips of our own zoo."""

from __future__ import annotations

import numpy as np
import pytest
from irbridge.models import onnx_zoo

from tests.conftest import assert_close, ort_run, seeded


@pytest.mark.slow
@pytest.mark.parametrize("name", onnx_zoo.NAMES)
def test_light_zoo_model_matches_onnxruntime(name, torch, tmp_path):
    import irbridge
    from irbridge.exporters.torch import load_saved

    model = onnx_zoo.light_model(name, seed=1)
    feeds = {model.graph.input[0].name: seeded((1, 3, 224, 224), seed=2)}
    ref = ort_run(model, feeds)[0]
    res = irbridge.convert(model, "torch", tmp_path / "out")
    assert res.report.ok, str(res.report)
    with torch.no_grad():
        got = res.exported(torch.from_numpy(feeds[model.graph.input[0].name])).numpy()
    assert_close(got, ref)
    # what was written loads back by itself (model.py + weights.safetensors) and agrees
    reloaded = load_saved(tmp_path / "out")
    with torch.no_grad():
        again = reloaded(torch.from_numpy(feeds[model.graph.input[0].name])).numpy()
    np.testing.assert_array_equal(again, got)


@pytest.mark.parametrize("name", ["vgg_small", "resnet_small", "mlp"])
def test_torch_round_trip_matches_the_original_module(name, torch, tmp_path):
    from irbridge.models.torch_zoo import ZOO

    import irbridge
    from irbridge.exporters.torch import load_saved

    build, shape = ZOO[name]
    net = build()
    x = torch.from_numpy(seeded(shape, seed=3))
    res = irbridge.convert(net, "torch", tmp_path / name, inputs=(x,))
    with torch.no_grad():
        ref = net(x).numpy()
        got = res.exported(x).numpy()
        saved = load_saved(tmp_path / name)(x).numpy()
    assert_close(got, ref)
    assert_close(saved, ref)
    # real layers, in the source's module tree
    kinds = {type(m).__name__ for m in res.exported.modules()}
    assert {"Linear"} <= kinds
    if name != "mlp":
        assert {"Conv2d", "ReLU"} <= kinds
        text = (tmp_path / name / "model.py").read_text()
        assert "class Model(nn.Module)" in text and "nn.Conv2d(" in text


def test_exported_module_names_follow_the_source_layers(torch):
    from irbridge.models.torch_zoo import vgg_small

    import irbridge

    gm = irbridge.export(irbridge.normalize(irbridge.load(vgg_small(), inputs={"x": (1, 3, 32, 32)})), "torch")
    # the source's module paths (features.0, classifier.1): a checkpoint's state_dict keys
    assert isinstance(gm.get_submodule("features.0"), torch.nn.Conv2d)
    assert isinstance(gm.get_submodule("classifier.1"), torch.nn.Linear)
    assert isinstance(gm.get_submodule("classifier.4"), torch.nn.Linear)  # eval-mode export has no Dropout
