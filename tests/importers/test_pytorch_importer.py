"""PyTorch importer: torch.onnx.export(dynamo=True) with module-path provenance."""

from __future__ import annotations

import pytest

from tests.conftest import assert_close, ort_run, seeded


def test_module_paths_become_provenance(torch):
    from irbridge.models.torch_zoo import vgg_small

    import irbridge

    m = irbridge.load(vgg_small(), inputs={"x": (1, 3, 32, 32)})
    sources = {(n.metadata_props["irbridge.source"], n.metadata_props["irbridge.source_op"]) for n in m.graph}
    assert ("features.0", "Conv2d") in sources
    assert ("classifier.1", "Linear") in sources
    assert m.metadata_props["irbridge.source_format"] == "torch"
    assert m.opset_imports[""] >= 18


def test_imported_graph_matches_the_module(torch):
    from irbridge.models.torch_zoo import resnet_small

    import irbridge

    net = resnet_small()
    x = seeded((1, 3, 64, 64), seed=5)
    m = irbridge.load(net, inputs=(torch.from_numpy(x),))
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert_close(ort_run(m, {m.graph.inputs[0].name: x})[0], ref)


def test_a_conv_without_bias_stays_without_bias(torch, tmp_path):
    """torch.onnx adds an all-zero bias to a bias=False conv; the import drops it again, and
    keeps a real bias even when it is all zero."""
    import irbridge

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.Conv2d(4, 2, 1))
    torch.nn.init.zeros_(net[1].bias)
    x = seeded((1, 3, 8, 8), seed=2)
    m = irbridge.load(net, inputs={"x": x})
    convs = [n for n in m.graph if n.op_type == "Conv"]
    assert [len(n.inputs) for n in convs] == [2, 3]
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert_close(ort_run(m, {"x": x})[0], ref)
    result = irbridge.convert(net, "torch", tmp_path / "out", inputs={"x": x})
    assert set(result.exported.state_dict()) == {"0.weight", "1.weight", "1.bias"}  # the source's keys


def test_train_mode_is_restored(torch):
    from irbridge.models.torch_zoo import vgg_small

    import irbridge

    net = vgg_small().train()
    irbridge.load(net, inputs={"x": (1, 3, 32, 32)})
    assert all(mod.training for mod in net.modules())


def test_module_without_inputs_is_a_clear_error(torch):
    from irbridge.models.torch_zoo import mlp

    import irbridge

    with pytest.raises(irbridge.InputError, match="example inputs"):
        irbridge.load(mlp())
