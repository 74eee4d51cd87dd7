"""The seeds as weight-binding stories: bare weights put onto an architecture written by hand.

- 000: a vgg16.npy-style dict onto a Keras VGG16 and onto a torchvision-style PyTorch VGG16:
  the dict's own TF network (onnxruntime), Keras and PyTorch agree.
- 001: Caffe blobs (OIHW) onto a Keras conv: matches a numpy cross-correlation.
- 002: a Theano-ordered Keras 1 weights file onto a channels_last Keras model: the flips and the
  Dense row permutation are reported, and the predictions match the definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, ort_run, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")


@pytest.mark.slow
def test_seed_000_vgg16_npy_onto_keras_and_pytorch(torch):
    from irbridge.models.vgg16_npy import vgg16_graph, vgg16_keras, vgg16_torch, vgg16_weights

    import irbridge

    weights = vgg16_weights(seed=0, width=1 / 16, fc=32, classes=10)
    x = seeded((2, 224, 224, 3), seed=1)
    ref = ort_run(vgg16_graph(weights, batch=2), {"images": x})[0]  # the dict's own network

    on_keras = irbridge.bind(weights, vgg16_keras(1 / 16, fc=32, classes=10))
    assert on_keras.convention == "tf" and not on_keras.unassigned and not on_keras.unfilled
    assert {a.transform for a in on_keras.assigned} == {"as is"}  # HWIO and (in, out) are Keras's own
    assert_close(np.asarray(on_keras.model(x, training=False)), ref)

    on_torch = irbridge.bind(weights, vgg16_torch(1 / 16, fc=32, classes=10), inputs={"x": (1, 3, 224, 224)})
    t = {a.tensor: a.transform for a in on_torch.assigned}
    assert t["conv1_1/0"] == "HWIO -> OIHW: transpose(3, 2, 0, 1)"
    assert "rows permuted from the HWC to the CHW flatten order" in t["fc6/0"]
    assert t["fc7/0"] == "IO -> OI: transpose(1, 0)"  # square: settled by the other tensors' shapes
    with torch.no_grad():
        got = on_torch.model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert_close(got, ref)


def test_seed_001_caffe_blobs_onto_a_keras_conv(tmp_path):
    from irbridge.models.caffe_zoo import write_blobs

    import irbridge

    from .test_seed_001_caffe_simple import correlate

    rng = np.random.default_rng(3)
    w = (rng.standard_normal((96, 3, 11, 11)) * 0.05).astype(np.float32)  # Caffe's OIHW
    b = rng.standard_normal(96).astype(np.float32)
    write_blobs(tmp_path / "conv.caffemodel", {"conv1": [w, b]})
    inp = keras.Input((67, 67, 3))
    model = keras.Model(inp, keras.layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inp))
    res = irbridge.bind(tmp_path / "conv.caffemodel", model)
    assert res.convention == "torch"
    assert res.assigned[0].transform == "OIHW -> HWIO: transpose(2, 3, 1, 0)"
    x = seeded((1, 3, 67, 67), seed=4)
    got = np.asarray(res.model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))
    ref = np.maximum(correlate(x.astype(np.float64), w.astype(np.float64), b, 4), 0)
    assert_close(got.transpose(0, 3, 1, 2), ref)


def test_seed_002_theano_weights_onto_a_channels_last_keras_model(tmp_path):
    from irbridge.models.legacy_h5 import vgg_style_keras, write_vgg_style

    import irbridge

    from .test_seed_002_theano_h5 import reference

    path = tmp_path / "weights_th.h5"
    weights = write_vgg_style(path, 1, "th", "theano", seed=7, weights_only=True)
    res = irbridge.bind(path, vgg_style_keras())
    assert res.convention == "theano"
    t = {a.tensor: a.transform for a in res.assigned}
    assert t["conv1_1_W"] == ("OIHW -> HWIO: transpose(2, 3, 1, 0); "
                              "flipped 180 degrees (true convolution -> cross-correlation)")
    assert t["dense_1_W"] == "rows permuted from the CHW to the HWC flatten order (16x4x4)"
    assert t["dense_2_W"] == "as is"
    x = seeded((2, 3, 16, 16), seed=8)
    ref = reference(x, weights, keras=1, ordering="th", backend="theano")
    got = np.asarray(res.model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))
    assert_close(got, ref)
    assert (got.argmax(1) == ref.argmax(1)).all()
