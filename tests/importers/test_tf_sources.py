"""TF sources without frozen-weight copies: a SavedModel (as Keras exports it), a frozen
GraphDef .pb and a tf.function over live variables import with their weights as ONNX
initializers (named after the variables), free batch kept, and match TF itself at batch 2 and
3; a VGG-16-size SavedModel imports under 2x its weights above the frameworks' baseline."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import assert_close, ort_run

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
tf = pytest.importorskip("tensorflow")

from irbridge.models import keras_apps  # noqa: E402


def _cnn():
    L = keras.layers
    inp = keras.Input((16, 16, 3), name="x")
    y = L.Conv2D(8, 3, name="conv")(L.Rescaling(1 / 127.5, offset=-1, name="scale")(inp))
    y = L.BatchNormalization(name="bn")(y)
    y = L.Conv2D(8, 3, groups=8, name="dw", activation="gelu")(y)
    out = L.Dense(5, name="fc")(L.GlobalAveragePooling2D(name="gap")(y))
    return keras_apps.reseed(keras.Model(inp, out, name="cnn"), 0)


def _compare(m, run):
    name = m.graph.inputs[0].name
    for batch in (2, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 16, 16, 3)).astype(np.float32) * 50
        assert_close(ort_run(m, {name: x})[0], run(x))


def _weights_are_initializers(m, at_least: int):
    inits = m.graph.initializers
    assert len(m.graph.inputs) == 1
    assert sum(int(np.prod(v.shape.numpy())) for v in inits.values() if v.shape is not None) >= at_least


def test_savedmodel_as_keras_exports_it(tmp_path):
    import irbridge

    km = _cnn()
    km.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    m = irbridge.load(tmp_path / "sm")
    assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    assert m.graph.inputs[0].shape[0] == "batch"  # free
    _weights_are_initializers(m, km.count_params() - 16)  # the BN statistics fold into nothing else
    assert any(name.startswith("conv") or "conv" in name for name in m.graph.initializers)
    assert not {n.op_type for n in m.graph} & {"PartitionedCall", "StatefulPartitionedCall"}
    _compare(m, lambda x: np.asarray(km(x, training=False)))


def test_frozen_graphdef_constants_become_initializers(tmp_path):
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    import irbridge

    km = _cnn()
    fn = tf.function(lambda x: km(x, training=False)).get_concrete_function(
        tf.TensorSpec((None, 16, 16, 3), tf.float32, name="x"))
    frozen = convert_variables_to_constants_v2(fn).graph.as_graph_def()
    (tmp_path / "g.pb").write_bytes(frozen.SerializeToString())
    m = irbridge.load(tmp_path / "g.pb")
    assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    _weights_are_initializers(m, 8 * 3 * 9)  # the conv kernel at least
    _compare(m, lambda x: np.asarray(km(x, training=False)))


def test_tf_function_over_live_variables():
    import irbridge

    rng = np.random.default_rng(5)
    w = tf.Variable(rng.standard_normal((3, 3, 3, 8)).astype(np.float32) / 5, name="kernel")
    b = tf.Variable(rng.standard_normal(8).astype(np.float32), name="bias")
    table = tf.Variable(rng.standard_normal((10, 8)).astype(np.float32), name="table")

    @tf.function(input_signature=[tf.TensorSpec((None, 16, 16, 3), tf.float32, name="x")])
    def net(x):
        y = tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME") + b)
        return tf.reduce_mean(y, axis=[1, 2]) + tf.gather(table, 3)

    m = irbridge.load(net)
    assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    assert {"kernel", "bias", "table"} <= set(m.graph.initializers)  # named after the variables
    _compare(m, lambda x: net(tf.constant(x)).numpy())


def test_savedmodel_signature_choice_is_said(tmp_path):
    import irbridge

    class Two(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="a")])
        def f(self, a):
            return a * 2.0

        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="a")])
        def g(self, a):
            return a + 1.0

    mod = Two()
    tf.saved_model.save(mod, str(tmp_path / "two"), signatures={"f": mod.f, "g": mod.g})
    with pytest.raises(irbridge.InputError, match="several signatures"):
        irbridge.load(tmp_path / "two")


PEAK = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import irbridge, tensorflow, tf2onnx, onnxruntime, keras, numpy as np
def rss(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024
base = rss("VmRSS")
m = irbridge.load(sys.argv[1])
assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
print("PEAK", rss("VmHWM") - base)
"""


@pytest.mark.slow
def test_vgg16_size_savedmodel_imports_under_twice_its_weights(tmp_path):
    """Measured in a fresh process: peak above the frameworks' baseline < 2x the weights."""
    big = keras.applications.VGG16(weights=None)  # 138 M parameters, 528 MiB
    weights = sum(int(np.prod(v.shape)) * 4 for v in big.weights)
    big.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    del big
    run = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / "sm")], capture_output=True, text=True,
                         timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    peak = int(next(ln for ln in run.stdout.splitlines() if ln.startswith("PEAK")).split()[1])
    assert peak < 2 * weights, f"peak {peak / 2**20:.0f} MiB for {weights / 2**20:.0f} MiB of weights"


def test_tf1_savedmodel_takes_the_restoring_path(tmp_path):
    """A TF1 SavedModel (simple_save: no object graph) is restored by TF and its variables read
    where TF holds them; a weight named like the resource it replaces (`w`) is no clash."""
    import irbridge

    rng = np.random.default_rng(6)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        w = tf.compat.v1.get_variable("w", initializer=w0)
        y = tf.nn.relu(tf.matmul(x, w), name="y")
        with tf.compat.v1.Session() as s:
            s.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.saved_model.simple_save(s, str(tmp_path / "tf1"), {"x": x}, {"y": y})
    m = irbridge.load(tmp_path / "tf1")
    assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    assert list(m.graph.initializers) == ["w"] and [v.name for v in m.graph.inputs] == ["x"]
    xs = np.random.default_rng(7).standard_normal((3, 4)).astype(np.float32)
    assert_close(ort_run(m, {"x": xs})[0], np.maximum(xs @ w0, 0))
