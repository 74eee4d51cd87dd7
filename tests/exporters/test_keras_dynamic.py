"""A Keras 3 CNN with a free batch, and a model with a free sequence axis, converted to PyTorch,
Keras and TF: free dims stay free in every export, which runs at several sizes against Keras
itself (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
tf = pytest.importorskip("tensorflow")

import irbridge  # noqa: E402


@pytest.fixture(scope="module")
def cnn():
    inp = keras.Input((20, 20, 3), name="img")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="c2")(x)
    x = keras.layers.AveragePooling2D(2, name="p2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(12, activation="relu", name="fc1")(x)
    return keras.Model(inp, keras.layers.Dense(5, name="fc2")(x), name="cnn")


def keras_ref(km, x):
    return np.asarray(km(x, training=False))


def test_keras_cnn_to_torch_runs_at_batch_2_and_3(cnn, torch):
    res = irbridge.convert(cnn, "torch")
    assert res.report.ok
    for batch in (2, 3):
        x = seeded((batch, 20, 20, 3), seed=batch)
        with torch.no_grad():
            got = res.exported(torch.from_numpy(x)).numpy()  # the graph keeps Keras' NHWC input
        assert_close(got, keras_ref(cnn, x))


def test_keras_cnn_to_keras_keeps_a_none_batch(cnn, tmp_path):
    res = irbridge.convert(cnn, "keras", tmp_path / "cnn.keras")
    assert res.report.ok
    assert tuple(res.exported.inputs[0].shape) == (None, 20, 20, 3)
    reloaded = keras.saving.load_model(tmp_path / "cnn.keras")
    assert tuple(reloaded.inputs[0].shape) == (None, 20, 20, 3)
    for batch in (2, 3):
        x = seeded((batch, 20, 20, 3), seed=10 + batch)
        assert_close(np.asarray(reloaded(x, training=False)), keras_ref(cnn, x))


def test_keras_cnn_to_tf_serves_any_batch(cnn, tmp_path):
    res = irbridge.convert(cnn, "tf", tmp_path / "sm")
    assert res.report.ok
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    serve = loaded.signatures["serving_default"]
    [spec] = serve.structured_input_signature[1].values()
    assert spec.shape.as_list() == [None, 20, 20, 3]
    for batch in (2, 3):
        x = seeded((batch, 20, 20, 3), seed=20 + batch)
        got = next(iter(serve(tf.constant(x)).values())).numpy()
        assert_close(got, keras_ref(cnn, x))


def seq_model(conv: bool):
    inp = keras.Input((None, 16), name="tokens")
    h = keras.layers.Conv1D(8, 3, padding="same", name="conv")(inp) if conv else inp
    h = keras.layers.Dense(8, activation="relu", name="d1")(h)
    return keras.Model(inp, keras.layers.Dense(4, name="d2")(h), name="seq")


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv1d"])
def test_a_free_sequence_axis_stays_free_in_torch(conv, torch):
    km = seq_model(conv)
    res = irbridge.convert(km, "torch")
    assert res.report.ok
    for shape in [(2, 9, 16), (3, 17, 16)]:
        x = seeded(shape, seed=shape[1])
        with torch.no_grad():
            got = res.exported(torch.from_numpy(x)).numpy()
        assert_close(got, keras_ref(km, x))


@pytest.mark.parametrize("target", ["keras", "tf"])
def test_a_free_sequence_axis_in_keras_and_tf(target):
    km = seq_model(conv=False)  # Dense over the last axis of (batch, time, 16)
    res = irbridge.convert(km, target)
    assert res.report.ok
    if target == "keras":
        assert tuple(res.exported.inputs[0].shape) == (None, None, 16)
        run = res.exported
    else:
        spec = res.exported.serving_default.input_signature[0]
        assert spec.shape.as_list() == [None, None, 16]
        run = lambda x: next(iter(res.exported.serving_default(tf.constant(x)).values()))  # noqa: E731
    for shape in [(2, 9, 16), (3, 17, 16)]:
        x = seeded(shape, seed=shape[1])
        assert_close(np.asarray(run(x)), keras_ref(km, x))


def test_conv1d_over_a_free_axis_is_refused_clearly_by_keras():
    with pytest.raises(irbridge.UnsupportedError, match="conv"):
        irbridge.convert(seq_model(conv=True), "keras")
