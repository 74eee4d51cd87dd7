"""irbridge.bind onto subclassed Keras models (issue 14): an already-called model needs no
`inputs`, a never-built one takes example arrays or shapes, the user's model is never changed,
and a Dense after a Flatten gets its rows right from a channels-first (PyTorch) source."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")

from irbridge.models.keras_zoo import SubclassedCNN as Sub  # noqa: E402

import irbridge  # noqa: E402

R = np.random.default_rng(0)
TF_WEIGHTS = {"conv": [R.standard_normal((3, 3, 3, 4)).astype("f4"), R.standard_normal(4).astype("f4")],
              "fc": [R.standard_normal((144, 3)).astype("f4"), R.standard_normal(3).astype("f4")]}


def reference(x):
    """The same network written as a functional Keras model with the weights set directly."""
    inp = keras.Input((8, 8, 3))
    conv, fc = keras.layers.Conv2D(4, 3), keras.layers.Dense(3)
    km = keras.Model(inp, fc(keras.layers.Flatten()(conv(inp))))
    conv.set_weights(TF_WEIGHTS["conv"])
    fc.set_weights(TF_WEIGHTS["fc"])
    return np.asarray(km(x))


def save_npy(tmp_path, weights):
    path = tmp_path / "w.npy"
    np.save(path, weights, allow_pickle=True)
    return path


def test_bind_onto_an_already_called_subclassed_model_needs_no_inputs(tmp_path):
    net = Sub()
    x = seeded((2, 8, 8, 3), seed=1)
    before = np.asarray(net(x))
    res = irbridge.bind(save_npy(tmp_path, TF_WEIGHTS), net)
    assert res.ok and isinstance(res.model, Sub) and res.model is not net
    assert_close(np.asarray(res.model(x)), reference(x))
    assert_close(np.asarray(net(x)), before)  # the user's model is never changed


@pytest.mark.parametrize("inputs", [(seeded((1, 8, 8, 3)),), {"x": (1, 8, 8, 3)}], ids=["arrays", "shapes"])
def test_bind_onto_a_never_built_subclassed_model_takes_inputs(tmp_path, inputs):
    net = Sub()
    res = irbridge.bind(save_npy(tmp_path, TF_WEIGHTS), net, inputs=inputs)
    assert res.ok and not net.built
    x = seeded((3, 8, 8, 3), seed=2)
    assert_close(np.asarray(res.model(x)), reference(x))
    with pytest.raises(irbridge.InputError, match=r"inputs=\(x,\)"):
        irbridge.bind(save_npy(tmp_path, TF_WEIGHTS), Sub())


def test_torch_layout_weights_onto_a_subclassed_model_flatten_rows_permuted(tmp_path):
    """OIHW kernels and a (out, in) Linear reading a C, H, W flatten: the Dense rows must be
    permuted to Keras's H, W, C order, which only the traced graph tells for a subclassed model."""
    kernel, bias = TF_WEIGHTS["conv"]
    dense, dbias = TF_WEIGHTS["fc"]
    hwc_rows = dense.reshape(6, 6, 4, 3)  # Keras's rows are (h, w, c)
    torch_dense = hwc_rows.transpose(2, 0, 1, 3).reshape(144, 3).T  # (out, c*h*w)
    torch_weights = {"conv.weight": kernel.transpose(3, 2, 0, 1), "conv.bias": bias,
                     "fc.weight": np.ascontiguousarray(torch_dense), "fc.bias": dbias}
    path = tmp_path / "w.npz"
    np.savez(path, **torch_weights)
    net = Sub()
    net(np.zeros((1, 8, 8, 3), np.float32))
    res = irbridge.bind(path, net, source_layout="torch")
    assert res.ok
    x = seeded((2, 8, 8, 3), seed=3)
    assert_close(np.asarray(res.model(x)), reference(x))
