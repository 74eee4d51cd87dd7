"""The Keras classics (hand-written speed references) are the PyTorch classics' networks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.exporters.test_torch_classics import PARAMS


@pytest.fixture
def keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("name", list(PARAMS))
def test_sizes_match_torchvision(name, keras):
    from irbridge.models.keras_classics import classic

    model = classic(name)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == PARAMS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_torch_weights_bound_onto_the_keras_classic_compute_the_same(name, keras, torch):
    """irbridge.bind puts the PyTorch classic's weights onto the Keras one: equal outputs prove
    the two are one network (padding, strides, BatchNorm eps and all)."""
    from irbridge.models.keras_classics import classic as keras_classic
    from irbridge.models.torch_classics import classic as torch_classic

    import irbridge
    from tests.conftest import assert_close, seeded

    net = torch_classic(name)
    state = {k: v.numpy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    result = irbridge.bind(state, keras_classic(name, size=64), source_layout="torch")
    assert not result.unassigned and not result.unfilled
    x = seeded((1, 3, 64, 64), seed=4)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    got = np.asarray(result.model(x.transpose(0, 2, 3, 1), training=False))
    assert_close(got, ref, rtol=1e-3)
