"""Seed 003: a pretrained network used from plain TF code: frozen weights that no optimizer
or initializer touches, every layer's output reachable by name, the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import assert_close, seeded

PLAIN_TF = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
path, x = sys.argv[1], np.load(sys.argv[2])
vgg = tf.saved_model.load(path)
layers = vgg.signatures["layers"]
image = tf.Variable(tf.random.uniform((1, 64, 64, 3), seed=1))   # the user's own variable
opt = tf.keras.optimizers.SGD(learning_rate=10.0)

@tf.function
def step():
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(layers(x=image)["block5_pool"])
    grads = tape.gradient(loss, [image])
    opt.apply_gradients(zip(grads, [image]))
    return loss

before = float(tf.reduce_mean(layers(x=tf.constant(x))["block5_pool"]))
image_before = image.numpy().copy()
step(); step()
after = float(tf.reduce_mean(layers(x=tf.constant(x))["block5_pool"]))
out = vgg.signatures["serving_default"](x=tf.constant(x))
print(json.dumps({"before": before, "after": after,
                  "image_moved": float(np.abs(image.numpy() - image_before).max()),
                  "weights": len(vgg.weights), "trainable": sum(w.trainable for w in vgg.weights),
                  "layers": sorted(layers.structured_outputs), "outputs": sorted(out),
                  "logits": np.asarray(next(iter(out.values()))).tolist()}))
"""


@pytest.mark.slow
def test_vgg19_style_network_from_plain_tf_code(torch, tmp_path):
    pytest.importorskip("tensorflow")
    import keras
    from irbridge.models.torch_zoo import vgg19_style

    import irbridge

    net = vgg19_style()
    x = seeded((1, 3, 64, 64), seed=3)
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
    km = irbridge.convert(net, "keras", inputs={"x": (1, 3, 64, 64)}).exported
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    keras_pool = keras.Model(km.input, km.get_layer("block5_pool").output)(x_nhwc)
    irbridge.convert(net, "tf", tmp_path / "vgg_tf", inputs={"x": (1, 3, 64, 64)})
    np.save(tmp_path / "x.npy", x_nhwc)
    run = subprocess.run([sys.executable, "-c", PLAIN_TF, str(tmp_path / "vgg_tf"), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["weights"] > 0 and r["trainable"] == 0  # frozen: nothing for an optimizer to touch
    assert r["image_moved"] > 0 and r["after"] == r["before"]  # the step moved only the user's variable
    assert {"block1_conv1", "block3_conv4", "block5_pool"} <= set(r["layers"])
    assert r["before"] == pytest.approx(float(np.mean(keras_pool)), rel=1e-5)
    assert_close(np.asarray(r["logits"], np.float32), logits)


@pytest.mark.slow
def test_caffe_preprocessing_is_baked_in(torch, tmp_path):
    pytest.importorskip("tensorflow")
    import tensorflow as tf
    from irbridge.models.torch_zoo import vgg19_style

    import irbridge

    net = vgg19_style(seed=1)
    res = irbridge.convert(net, "tf", tmp_path / "pre", inputs={"x": (1, 3, 64, 64)}, preprocess="caffe-bgr-mean")
    assert res.report.ok
    rgb = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    bgr_centred = rgb[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(np.ascontiguousarray(bgr_centred.transpose(0, 3, 1, 2)))).numpy()
    loaded = tf.saved_model.load(str(tmp_path / "pre"))
    got = next(iter(loaded.signatures["serving_default"](x=tf.constant(rgb)).values())).numpy()
    assert_close(got, ref)
