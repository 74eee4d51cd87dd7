"""Inputs are never mutated (DESIGN.md §7): models handed to load/normalize/convert/save/bind
are the same afterwards, byte for byte or weight for weight."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from irbridge.models.onnx_zoo import light_model

import irbridge


def _bytes(model: ir.Model) -> bytes:
    return ir.to_proto(model).SerializeToString()


def test_an_onnx_ir_model_and_a_model_proto_are_unchanged(tmp_path, torch):
    proto = light_model("squeezenet")
    before_proto = proto.SerializeToString()
    model = ir.serde.deserialize_model(proto)
    before = _bytes(model)
    irbridge.convert(model, "torch", tmp_path / "t")
    irbridge.normalize(model)
    irbridge.save(model, tmp_path / "m.onnx")  # the streaming writer swaps tensors while it writes
    irbridge.convert(proto, "onnx", tmp_path / "p.onnx")
    assert _bytes(model) == before
    assert proto.SerializeToString() == before_proto


def test_a_torch_module_is_unchanged(tmp_path, torch):
    from irbridge.models.torch_zoo import vgg_small

    net = vgg_small().train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    irbridge.convert(net, "onnx", tmp_path / "v.onnx", inputs={"x": (1, 3, 32, 32)})
    weights = {k: v.numpy() * 0.5 for k, v in net.state_dict().items()}
    irbridge.bind(weights, net, inputs={"x": (1, 3, 32, 32)})
    assert net.training and all(m.training for m in net.modules())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_a_keras_model_is_unchanged(tmp_path):
    keras = pytest.importorskip("keras")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    km = keras.Model(inp, keras.layers.Dense(2, name="fc")(keras.layers.Flatten()(x)))
    before = [w.copy() for w in km.get_weights()]
    irbridge.convert(km, "onnx", tmp_path / "k.onnx")
    irbridge.bind({ly.name: [w * 2 for w in ly.get_weights()] for ly in km.layers if ly.get_weights()}, km)
    assert all(np.array_equal(a, b) for a, b in zip(before, km.get_weights()))


def test_written_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary (mkstemp's 0600): the result must be readable
    as any file the user writes is (0666 less the umask), not private to its owner."""
    import os
    import stat

    from irbridge._io import atomic_path

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.bin") as tmp:
            tmp.write_bytes(b"x")
        with atomic_path(tmp_path / "d", directory=True) as tmp:
            (tmp / "a").write_text("y")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
