"""recover-batchnorm: Keras BatchNormalization layers come back as BatchNormalization nodes with
their own statistics, and the graph still computes what Keras computes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, ort_run, seeded


@pytest.fixture
def keras():
    return pytest.importorskip("keras")


def _model(keras, center: bool, scale: bool):
    layers = keras.layers
    x = keras.Input((8, 8, 3), batch_size=2, name="img")
    y = layers.Conv2D(4, 3, name="conv")(x)
    y = layers.BatchNormalization(center=center, scale=scale, epsilon=1e-3, name="bn_conv")(y)
    y = layers.Dense(5, name="dense")(layers.Flatten()(layers.ReLU()(y)))
    y = layers.BatchNormalization(center=center, scale=scale, name="bn_dense")(y)
    model = keras.Model(x, y)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # statistics that are not the defaults
        if isinstance(layer, layers.BatchNormalization):
            for w in layer.weights:
                w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
    return model


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_keras_batchnorm_is_one_node_with_its_statistics(keras, center, scale):
    import irbridge

    km = _model(keras, center, scale)
    m = irbridge.normalize(irbridge.load(km))
    bns = [n for n in m.graph if n.op_type == "BatchNormalization"]
    assert [n.metadata_props["irbridge.source"] for n in bns] == ["bn_conv", "bn_dense"]
    for node in bns:
        layer = km.get_layer(node.metadata_props["irbridge.source"])
        np.testing.assert_array_equal(node.inputs[3].const_value.numpy(), layer.moving_mean.numpy())
        np.testing.assert_array_equal(node.inputs[4].const_value.numpy(), layer.moving_variance.numpy())
        assert node.attributes["epsilon"].value == pytest.approx(layer.epsilon)
    assert "Mul" not in [n.op_type for n in m.graph]
    x = seeded((2, 8, 8, 3), seed=1)
    assert_close(ort_run(m, {"img": x})[0], np.asarray(km(x, training=False)))


def test_a_mul_add_that_is_not_a_batchnorm_stays(keras):
    """x * w + b with no variance and epsilon: nothing to recover."""
    import irbridge

    x = keras.Input((6,), batch_size=1, name="v")
    km = keras.Model(x, keras.layers.Dense(3)(x) * 2.0 + 1.0)
    m = irbridge.normalize(irbridge.load(km))
    assert "BatchNormalization" not in [n.op_type for n in m.graph]
