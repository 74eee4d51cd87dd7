"""Seed 001 with Caffe itself: the seed's simple.prototxt (96 filters, 11x11, stride 4, on a
500x500x3 input, then ReLU) and weights in Caffe's OIHW layout convert to Keras and match a
numpy cross-correlation; the seed's `w.reshape(96, 3, 11, 11)` mistake is caught by
`irbridge verify --layerwise` at conv1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from irbridge.models.caffe_zoo import write_blobs

from tests.conftest import seeded

SIMPLE = '''name: "simple"
input: "inp"
input_shape { dim: 1 dim: 3 dim: 500 dim: 500 }
layer { name: "conv1" type: "Convolution" bottom: "inp" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 96 kernel_size: 11 pad: 0 stride: 4 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
'''


def caffemodel(path, w_oihw, b):
    write_blobs(path, {"conv1": [w_oihw, b]})


def correlate(x, w, b, stride):
    """Caffe's (and TF's) convolution is a cross-correlation: no kernel flip."""
    k = w.shape[-1]
    oh = (x.shape[2] - k) // stride + 1
    ow = (x.shape[3] - k) // stride + 1
    y = np.zeros((1, w.shape[0], oh, ow))
    for i in range(k):
        for j in range(k):
            patch = x[:, :, i: i + stride * (oh - 1) + 1: stride, j: j + stride * (ow - 1) + 1: stride]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y + b[None, :, None, None]


@pytest.mark.slow
def test_simple_prototxt_to_keras_and_the_reshape_mistake(tmp_path, capsys):
    pytest.importorskip("keras")
    import irbridge
    from irbridge.cli import main

    (tmp_path / "simple.prototxt").write_text(SIMPLE)
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((96, 3, 11, 11)) * 0.05).astype(np.float32)  # Caffe's OIHW
    b = rng.standard_normal(96).astype(np.float32)
    caffemodel(tmp_path / "simple.caffemodel", w, b)
    x = seeded((1, 3, 500, 500), seed=2)
    ref = np.maximum(correlate(x.astype(np.float64), w.astype(np.float64), b, 4), 0)

    res = irbridge.convert(tmp_path / "simple.prototxt", "keras", tmp_path / "simple.keras",
                           weights=tmp_path / "simple.caffemodel")
    got = np.asarray(res.exported(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), ref, rtol=1e-4, atol=1e-5 * max(1, np.abs(ref).max()))

    # the seed's port: an HWIO kernel (as Keras holds it) pushed back with reshape, not transpose
    hwio = w.transpose(2, 3, 1, 0)
    caffemodel(tmp_path / "wrong.caffemodel", hwio.reshape(96, 3, 11, 11), b)
    good = irbridge.convert(tmp_path / "simple.prototxt", "onnx", tmp_path / "good.onnx",
                            weights=tmp_path / "simple.caffemodel").output
    wrong = irbridge.convert(tmp_path / "simple.prototxt", "onnx", tmp_path / "wrong.onnx",
                             weights=tmp_path / "wrong.caffemodel").output
    capsys.readouterr()
    code = main(["verify", str(good), str(wrong), "--layerwise", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["first_divergence"]["layer"] == "conv1"
    # and names the cause, with the fix
    assert report["first_divergence"]["hint"] == "conv1: weights were reshaped, not transposed: use w.transpose(3, 2, 0, 1)"
