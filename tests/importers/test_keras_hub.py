"""keras-hub backbones built from arguments (no presets, nothing downloaded; 2 layers, hidden
32): converted to PyTorch and ONNX, each compared with Keras itself at two batch sizes and two
sequence lengths (the import check runs them too: batch 2 and 3, sequence 8 and 13)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, ort_run

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
pytest.importorskip("tensorflow")
pytest.importorskip("keras_hub", reason="keras-hub is a test-only dependency (requirements/test-extra.txt)")

from irbridge.models import keras_apps  # noqa: E402

SIZES = [(2, 8), (3, 12)]  # (batch, sequence)


def _keras_out(km, feeds):
    out = km(feeds, training=False) if isinstance(km.input, dict) else km(next(iter(feeds.values())), training=False)
    return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else {None: np.asarray(out)}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(keras_apps.HUB))
def test_backbone_to_torch_and_onnx_matches_keras(name, torch):
    import irbridge

    km = keras_apps.hub(name, seed=1)
    m = irbridge.normalize(irbridge.load(km))
    check = m.metadata_props["irbridge.import_check"]
    assert check.startswith("keras: ok") and ";" in check  # run at two sizes
    onnx_model = irbridge.export(m.clone(), "onnx")
    module = irbridge.export(m, "torch")
    outputs = [v.name for v in m.graph.outputs]
    inputs = [v.name for v in m.graph.inputs]
    for batch, seq in SIZES:
        feeds = keras_apps.hub_inputs(name, batch, seq, seed=batch)
        ref = _keras_out(km, feeds)
        refs = [ref[n] if n in ref else next(iter(ref.values())) for n in outputs]
        got_onnx = ort_run(onnx_model, {k: feeds[k] for k in inputs})
        with torch.no_grad():
            got = module(*[torch.from_numpy(feeds[k]) for k in inputs])
        got = got if isinstance(got, (list, tuple)) else [got]
        for r, o, t in zip(refs, got_onnx, got):
            assert_close(o, r)
            assert_close(t.numpy(), r)


def test_bert_backbone_imports_with_layer_names():
    """Was `ValueError: in user code` inside tf2onnx: a functional model on a dict of inputs."""
    import irbridge

    km = keras_apps.hub("BertBackbone")
    m = irbridge.load(km)
    assert sorted(v.name for v in m.graph.inputs) == ["padding_mask", "segment_ids", "token_ids"]
    assert sorted(v.name for v in m.graph.outputs) == ["pooled_output", "sequence_output"]
    sources = {(n.metadata_props.get("irbridge.source"), n.metadata_props.get("irbridge.source_op")) for n in m.graph}
    assert {("token_embedding", "ReversibleEmbedding"), ("transformer_layer_0", "TransformerEncoder"),
            ("pooled_dense", "Dense")} <= sources
    assert all("irbridge.source" in n.metadata_props for n in m.graph)  # every node keeps its layer
