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
