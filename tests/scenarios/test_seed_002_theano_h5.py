"""Seed 002: a Theano-ordered Keras 1 VGG-style .h5 (true-convolution kernels, a Dense after a
Flatten) must give, in Keras (channels_last) and in PyTorch, the predictions of a numpy
forward pass written from the definitions — the user who ported it by hand got class 585
instead of 285. Keras 1 `tf`-ordered and Keras 2 files of both orderings import too."""

from __future__ import annotations

import numpy as np
import pytest
from irbridge.models.legacy_h5 import write_vgg_style

pytest.importorskip("h5py")


def conv(x, kernel_oihw, bias, *, true_convolution: bool, pad: int):
    """Numpy 2-D convolution on NCHW data from the definition (stride 1)."""
    k = kernel_oihw[:, :, ::-1, ::-1] if true_convolution else kernel_oihw  # convolution flips
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = k.shape[2:]
    h, w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    y = np.zeros((x.shape[0], k.shape[0], h, w), np.float64)
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("nchw,oc->nohw", x[:, :, i:i + h, j:j + w], k[:, :, i, j])
    return y + bias[None, :, None, None]


def reference(x_nchw, weights, *, keras: int, ordering: str, backend: str):
    """The network's forward pass from the definitions, in float64."""
    flip = keras == 1 and backend == "theano"
    relu = lambda t: np.maximum(t, 0)  # noqa: E731
    pool = lambda t: t.reshape(t.shape[0], t.shape[1], t.shape[2] // 2, 2, t.shape[3] // 2, 2).max(axis=(3, 5))  # noqa: E731

    def k(name):
        w = weights[name][0].astype(np.float64)
        return w if (keras == 1 and ordering == "th") else w.transpose(3, 2, 0, 1)  # stored -> OIHW

    x = np.pad(x_nchw.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))  # zeropadding2d_1
    x = relu(conv(x, k("conv1_1"), weights["conv1_1"][1], true_convolution=flip, pad=0))
    x = relu(conv(x, k("conv1_2"), weights["conv1_2"][1], true_convolution=flip, pad=1))
    x = relu(conv(pool(x), k("conv2_1"), weights["conv2_1"][1], true_convolution=flip, pad=1))
    x = pool(x)
    # Flatten follows the data's own order: C,H,W for th; H,W,C for tf
    flat = x.reshape(x.shape[0], -1) if ordering == "th" else x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1)
    h = relu(flat @ weights["dense_1"][0] + weights["dense_1"][1])
    z = h @ weights["dense_2"][0] + weights["dense_2"][1]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


CASES = [(1, "th", "theano"), (1, "tf", "tensorflow"), (2, "th", "tensorflow"), (2, "tf", "tensorflow")]


@pytest.mark.parametrize("keras,ordering,backend", CASES, ids=[f"keras{k}-{o}" for k, o, _ in CASES])
def test_legacy_h5_matches_the_definition(keras, ordering, backend, tmp_path, torch):
    import irbridge

    path = tmp_path / "vgg.h5"
    weights = write_vgg_style(path, keras, ordering, backend, seed=5)
    x = np.random.default_rng(6).standard_normal((2, 3, 16, 16)).astype(np.float32)
    ref = reference(x, weights, keras=keras, ordering=ordering, backend=backend)
    feed = x if ordering == "th" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    m = irbridge.normalize(irbridge.load(path, inputs=None))
    assert not any("irbridge.layout" in v.metadata_props for v in m.graph.initializers.values())
    assert not [n for n in m.graph if n.op_type in ("Slice", "Transpose")][1 if ordering == "tf" else 0:]
    res = irbridge.convert(path, "torch")
    with torch.no_grad():
        got = res.exported(torch.from_numpy(np.repeat(feed[:1], 1, axis=0))).numpy()
    np.testing.assert_allclose(got, ref[:1], rtol=1e-4, atol=1e-5)
    assert got.argmax() == ref[:1].argmax()


@pytest.mark.slow
def test_seed_002_theano_file_to_keras_channels_last(tmp_path):
    pytest.importorskip("keras")
    import irbridge

    path = tmp_path / "vgg_theano.h5"
    weights = write_vgg_style(path, 1, "th", "theano", seed=7)
    x = np.random.default_rng(8).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = reference(x, weights, keras=1, ordering="th", backend="theano")
    res = irbridge.convert(path, "keras")
    km = res.exported
    got = np.asarray(km(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))  # channels_last
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    import keras

    assert not any(isinstance(layer, keras.layers.Permute) for layer in km.layers)
    # the seed's two traps, for contrast: without the flip, or flattening in HWC order, the
    # numbers (and in general the class) differ from the definition
    no_flip = reference(x, weights, keras=1, ordering="th", backend="tensorflow")
    assert not np.allclose(no_flip, ref, rtol=1e-3)
