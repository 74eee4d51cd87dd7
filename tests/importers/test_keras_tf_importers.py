"""Keras 3 and TF importers (through tf2onnx): provenance, checks against Keras, round trips,
seed 000's TF block, SavedModel and frozen GraphDef files, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
tf = pytest.importorskip("tensorflow")


def small_keras_net():
    inp = keras.Input((16, 16, 3), name="img")
    a = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    a = keras.layers.BatchNormalization(name="bn1")(a)
    b = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(a)
    c = keras.layers.Add(name="add")([a, b])
    c = keras.layers.Concatenate(name="cat")([c, a])
    c = keras.layers.MaxPooling2D(name="pool")(c)
    c = keras.layers.Dropout(0.3, name="drop")(c)
    c = keras.layers.Flatten(name="flat")(c)
    out = keras.layers.Dense(5, activation="softmax", name="fc")(c)
    km = keras.Model(inp, out, name="small")
    rng = np.random.default_rng(0)  # seeded, non-trivial BN statistics
    bn = km.get_layer("bn1")
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.standard_normal(8) * 0.1,
                    rng.standard_normal(8) * 0.1, rng.uniform(0.5, 1.5, 8)])
    return km


def test_keras_model_imports_with_layer_provenance():
    import irbridge

    m = irbridge.load(small_keras_net())
    assert m.metadata_props["irbridge.source_format"] == "keras"
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")
    sources = {(n.metadata_props.get("irbridge.source"), n.metadata_props.get("irbridge.source_op")) for n in m.graph}
    assert {("conv1", "Conv2D"), ("dw", "DepthwiseConv2D"), ("fc", "Dense")} <= sources


@pytest.mark.parametrize("target", ["keras", "torch"])
def test_keras_round_trips(target, tmp_path):
    if target == "torch":
        pytest.importorskip("torch")
    import irbridge

    km = small_keras_net()
    x = np.random.default_rng(1).standard_normal((1, 16, 16, 3)).astype(np.float32)
    ref = np.asarray(km(x, training=False))
    res = irbridge.convert(km, target)
    assert res.report.ok
    if target == "keras":
        got = np.asarray(res.exported(x, training=False))
    else:
        import torch

        with torch.no_grad():
            got = res.exported(torch.from_numpy(x)).numpy()  # the ONNX graph keeps Keras' NHWC input
    assert_close(got, ref)


def test_keras_file_and_sequential(tmp_path):
    import irbridge

    seq = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="tanh", name="h"),
                            keras.layers.Dense(2, name="o")], name="seq")
    path = tmp_path / "seq.keras"
    seq.save(path)
    m = irbridge.load(path)
    assert {n.metadata_props.get("irbridge.source") for n in m.graph} >= {"h", "o"}


def test_lambda_layers_are_refused_unless_trusted(tmp_path):
    import irbridge

    inp = keras.Input((4,))
    km = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp))
    path = tmp_path / "lam.keras"
    km.save(path)
    with pytest.raises(irbridge.UnsupportedError, match="trust-code"):
        irbridge.load(path)
    m = irbridge.load(path, trust_code=True)
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")


def test_seed_000_tf_block_matches_the_keras_conv2d_block_exactly():
    """tf.nn.conv2d + bias_add + relu over a vgg16.npy-style [kernel, bias] pair imports to the
    same graph output as Keras' Conv2D(padding='same', activation='relu') with those weights."""
    from irbridge.models.vgg16_npy import vgg16_weights

    import irbridge

    kernel, bias = vgg16_weights(seed=0, width=0.25)["conv1_1"]

    @tf.function(input_signature=[tf.TensorSpec((1, 32, 32, 3), tf.float32, name="images")])
    def block(images):
        conv = tf.nn.conv2d(images, tf.constant(kernel), [1, 1, 1, 1], padding="SAME")
        return tf.nn.relu(tf.nn.bias_add(conv, tf.constant(bias)))

    inp = keras.Input((32, 32, 3), name="images")
    layer = keras.layers.Conv2D(kernel.shape[-1], 3, padding="same", activation="relu", name="conv1_1")
    km = keras.Model(inp, layer(inp))
    layer.set_weights([kernel, bias])
    x = np.random.default_rng(2).standard_normal((1, 32, 32, 3)).astype(np.float32)
    from irbridge.verify import onnx_runner

    imported = irbridge.load(block)
    assert imported.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    from_tf = onnx_runner(irbridge.normalize(imported)).run({"images": x})
    from_keras = onnx_runner(irbridge.normalize(irbridge.load(km))).run({"images": x})
    np.testing.assert_array_equal(next(iter(from_tf.values())), next(iter(from_keras.values())))
    assert_close(next(iter(from_tf.values())), np.asarray(block(x)))


def test_savedmodel_and_frozen_graphdef_files(tmp_path):
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    import irbridge

    rng = np.random.default_rng(3)
    w = tf.Variable(rng.standard_normal((3, 3, 3, 4)).astype(np.float32))

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32, name="x")])
        def __call__(self, x):
            return tf.nn.relu(tf.nn.conv2d(x, w, 1, "VALID"))

    net = Net()
    net.w = w
    tf.saved_model.save(net, str(tmp_path / "sm"))
    x = seeded((1, 8, 8, 3), seed=4)
    ref = net(tf.constant(x)).numpy()
    from irbridge.verify import onnx_runner

    m = irbridge.load(tmp_path / "sm")
    assert m.metadata_props["irbridge.source_format"] == "tf-savedmodel"
    assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")  # run against TF itself
    assert_close(next(iter(onnx_runner(m).run({m.graph.inputs[0].name: x}).values())), ref)
    frozen = convert_variables_to_constants_v2(net.__call__.get_concrete_function())
    (tmp_path / "g.pb").write_bytes(frozen.graph.as_graph_def().SerializeToString())
    g = irbridge.load(tmp_path / "g.pb")
    assert g.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    assert_close(next(iter(onnx_runner(g).run({g.graph.inputs[0].name: x}).values())), ref)


def test_graphs_that_touch_files_are_refused(tmp_path):
    import irbridge

    @tf.function(input_signature=[tf.TensorSpec((), tf.string, name="p")])
    def reader(p):
        return tf.io.read_file(p)

    g = reader.get_concrete_function().graph.as_graph_def()
    (tmp_path / "r.pb").write_bytes(g.SerializeToString())
    with pytest.raises(irbridge.UnsupportedError, match="ReadFile"):
        irbridge.load(tmp_path / "r.pb")


def test_subclassed_keras_model_with_given_input_shape():
    from irbridge.models.keras_zoo import SubclassedCNN as Net

    import irbridge

    with pytest.raises(irbridge.InputError, match="subclassed"):
        irbridge.load(Net())  # never built nor called: Keras knows no input shape
    net = Net()
    net(np.zeros((1, 8, 8, 3), np.float32))
    assert irbridge.load(net).metadata_props["irbridge.import_check"].startswith("keras: ok")  # issue 14
    m = irbridge.load(net, inputs={"x": (1, 8, 8, 3)})
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")
    assert {n.metadata_props.get("irbridge.source") for n in m.graph} >= {"conv", "fc"}
