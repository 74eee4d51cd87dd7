"""RegNetX / RegNetY and ResNet-RS, the keras.applications families of tf.keras 2.x that Keras 3
no longer ships, built by models/keras_regnet.py with seeded weights (realistic BN statistics,
keras_apps.reseed). Each takes free image sides and its classifier head; it goes Keras ->
PyTorch (the module and the written model.py) and Keras -> ONNX -> Keras, every result compared
with Keras itself at batch 2 and 3 and at an even and an odd image side. The inputs are pixel
values in [0, 255]: the models start with tf.keras's Rescaling + Normalization."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import zoo_subset

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
pytest.importorskip("tensorflow")

from irbridge.models import keras_apps, keras_regnet  # noqa: E402

from tests.importers.test_keras_applications import _convert_all  # noqa: E402

# row -> builder; the narrow ResNet-RS-50 has the published structure at a quarter of the width
MODELS = {
    "RegNetX002": lambda: keras_regnet.regnet("RegNetX002", classes=10),
    "RegNetY002": lambda: keras_regnet.regnet("RegNetY002", classes=10),
    "ResNetRS50_w025": lambda: keras_regnet.resnet_rs(50, width=0.25, classes=10),
    "ResNetRS50": lambda: keras_regnet.resnet_rs(50, classes=10),
}


def _pixels(batch, size, seed):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("config, params", [
    ("RegNetX002", 2.7), ("RegNetY002", 3.2), ("RegNetX004", 5.2), ("RegNetY004", 4.4)])
def test_regnet_sizes_are_the_published_ones(config, params):
    """Parameter counts (millions, 1000 classes, 224 px) as keras.applications' table lists them."""
    km = keras_regnet.regnet(config, input_shape=(224, 224, 3))
    assert round(km.count_params() / 1e6, 1) == params


def test_resnet_rs50_size_is_the_published_one():
    km = keras_regnet.resnet_rs(50, input_shape=(224, 224, 3))
    assert round(km.count_params() / 1e6, 1) == 35.7
    assert km.get_layer("resnetrs50_stage1_block0_shortcut_pool")  # ResNet-D shortcut
    assert km.get_layer("resnetrs50_stem_conv4")  # the strided conv in place of the max pool


def test_stochastic_depth_is_off_at_inference():
    km = keras_apps.reseed(keras_regnet.resnet_rs(50, width=0.25, classes=10), 0)
    x = _pixels(2, 32, 0)
    np.testing.assert_array_equal(np.asarray(km(x, training=False)), np.asarray(km(x, training=False)))
    assert not np.allclose(np.asarray(km(x, training=True)), np.asarray(km(x, training=False)))


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_subset(MODELS, ("RegNetY002", "ResNetRS50_w025")))
def test_converts_and_matches_keras(name, torch, tmp_path, record_property):
    km = keras_apps.reseed(MODELS[name](), seed=4)
    results = _convert_all(km, [32, 49], save_to=tmp_path / "torch", make_input=_pixels)
    record_property("targets", results)
    assert results == {"torch": "ok", "onnx": "ok", "keras": "ok"}, results
