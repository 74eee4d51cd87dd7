"""The nine zoo models to Keras: onnxruntime's outputs, no transposes left in the conv nets,
and the saved .keras file reloads with keras.saving.load_model to the same outputs."""

from __future__ import annotations

import numpy as np
import pytest
from irbridge.models import onnx_zoo

from tests.conftest import assert_close, ort_run, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")

# ShuffleNet's channel shuffle is a Reshape-Transpose-Reshape over channels: Keras needs Permutes.
NEEDS_PERMUTE = {"shufflenet"}


@pytest.mark.slow
@pytest.mark.parametrize("name", onnx_zoo.NAMES)
def test_zoo_model_to_keras(name, tmp_path):
    import irbridge
    import irbridge.keras_layers  # noqa: F401  (registers the custom layers for loading)

    model = onnx_zoo.light_model(name, seed=2)
    x = seeded((1, 3, 224, 224), seed=3)
    ref = ort_run(model, {model.graph.input[0].name: x})[0]
    res = irbridge.convert(model, "keras", tmp_path / f"{name}.keras")
    assert res.report.ok, str(res.report)
    km = res.exported
    permutes = [layer.name for layer in km.layers if isinstance(layer, keras.layers.Permute)]
    if name not in NEEDS_PERMUTE:
        assert permutes == []
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # NHWC interfaces by default
    from irbridge.exporters.keras import info

    out_perm = info(km)["outputs"][0][1]  # how the output is laid out (NHWC for a map)
    got = np.asarray(km(x_nhwc, training=False)).transpose(np.argsort(out_perm))
    assert_close(got, ref)
    reloaded = keras.saving.load_model(tmp_path / f"{name}.keras")
    again = np.asarray(reloaded(x_nhwc, training=False)).transpose(np.argsort(out_perm))
    np.testing.assert_allclose(again, got, rtol=1e-6, atol=1e-7)


def test_layers_are_named_after_the_source_layers():
    import irbridge

    km = irbridge.export(irbridge.normalize(irbridge.load(onnx_zoo.light_model("squeezenet"))), "keras")
    names = {layer.name for layer in km.layers}
    assert {"conv1", "fire2_squeeze1x1", "conv10"} <= names


def test_keep_nchw_io_costs_one_permute_per_interface():
    from irbridge.passes.assign_nhwc import AssignNHWC

    import irbridge
    from irbridge.exporters.keras import export

    m = irbridge.normalize(irbridge.load(onnx_zoo.light_model("squeezenet", seed=4)))
    laid = irbridge.normalize(m, [AssignNHWC(keep_nchw_io=True)])
    km = export(laid, keep_nchw_io=True)
    assert sum(isinstance(layer, keras.layers.Permute) for layer in km.layers) == 1  # the input's
    x = seeded((1, 3, 224, 224), seed=5)
    assert_close(np.asarray(km(x, training=False)), ort_run(m, {"data_0": x})[0])
