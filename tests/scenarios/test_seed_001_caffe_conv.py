"""Seed 001: one 11x11 stride-4 convolution with 96 filters (Caffe's conv1) moved to Keras.
The seed's user reshaped the kernel instead of transposing it; irbridge must not."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import seeded


def test_pytorch_conv1_converts_to_keras_within_1e_5(torch):
    pytest.importorskip("keras")
    import irbridge

    conv = torch.nn.Conv2d(3, 96, kernel_size=11, stride=4)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.05)
        conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
    x = seeded((1, 3, 227, 227), seed=2)
    with torch.no_grad():
        ref = conv(torch.from_numpy(x)).numpy()  # the source framework is the reference
    res = irbridge.convert(conv, "keras", inputs=(torch.from_numpy(x),))
    km = res.exported
    layer = next(layer for layer in km.layers if type(layer).__name__ == "Conv2D")
    kernel = layer.get_weights()[0]
    np.testing.assert_array_equal(kernel, conv.weight.detach().numpy().transpose(2, 3, 1, 0))  # HWIO
    got = np.asarray(km(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, ref, atol=1e-5 * max(1, np.abs(ref).max()), rtol=1e-5)
    # the seed's mistake, for contrast: a reshape instead of a transpose gives another answer
    wrong = conv.weight.detach().numpy().reshape(11, 11, 3, 96)
    assert not np.allclose(wrong, kernel)
