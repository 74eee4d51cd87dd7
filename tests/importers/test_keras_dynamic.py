"""Keras and TF sources keep their free dims (None) free, and `inputs=` takes example arrays as
well as shapes (issue 14). References: Keras and TF themselves; onnxruntime for the graph."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
tf = pytest.importorskip("tensorflow")

from irbridge.models.keras_zoo import SubclassedCNN as Sub  # noqa: E402

import irbridge  # noqa: E402
from irbridge import dims  # noqa: E402


def cnn():
    inp = keras.Input((16, 16, 3), name="img")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(name="p1")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(inp, keras.layers.Dense(5, name="fc")(x), name="cnn")




def graph_inputs(m):
    return {v.name: [d if isinstance(d, int) else str(d) for d in v.shape] for v in dims.graph_inputs(m)}


def run_onnx(m, x):
    from irbridge.verify import onnx_runner

    r = onnx_runner(m)
    return next(iter(r.run({r.input_names[0]: x}).values()))


def test_a_free_keras_batch_stays_free_and_is_checked_at_two_sizes():
    km = cnn()
    m = irbridge.load(km)
    assert graph_inputs(m) == {"img": ["batch", 16, 16, 3]}
    assert dims.summary(m) == {"free": [{"input": "img", "axis": 0, "label": "batch"}], "fixed": []}
    check = m.metadata_props["irbridge.import_check"]
    assert check.startswith("keras: ok") and "img=2x16x16x3" in check and "img=3x16x16x3" in check
    for batch in (2, 3, 5):  # the graph itself runs at any batch, and computes what Keras does
        x = seeded((batch, 16, 16, 3), seed=batch)
        assert_close(run_onnx(irbridge.normalize(m), x), np.asarray(km(x, training=False)))


def test_shapes_in_inputs_fix_dims_and_say_so_while_example_arrays_do_not():
    km = cnn()
    fixed = irbridge.load(km, inputs={"img": (4, 16, 16, 3)})
    assert graph_inputs(fixed) == {"img": [4, 16, 16, 3]}
    assert [(e["input"], e["axis"], e["size"]) for e in dims.fixed(fixed)] == [("img", 0, 4)]
    assert "inputs=" in dims.fixed(fixed)[0]["why"]
    for given in [(seeded((7, 16, 16, 3)),), [seeded((7, 16, 16, 3))], {"img": seeded((7, 16, 16, 3))},
                  seeded((7, 16, 16, 3))]:
        m = irbridge.load(km, inputs=given)
        assert graph_inputs(m) == {"img": ["batch", 16, 16, 3]} and dims.fixed(m) == []
    with pytest.raises(irbridge.InputError, match="img"):
        irbridge.load(km, inputs=(seeded((7, 9, 9, 3)),))  # not a size the model takes
    with pytest.raises(irbridge.InputError, match="img"):
        irbridge.load(km, inputs={"image": (1, 16, 16, 3)})  # no such input


def test_a_free_sequence_axis_stays_free():
    inp = keras.Input((None, 16), name="tokens")
    h = keras.layers.Dense(8, activation="relu", name="d1")(inp)
    km = keras.Model(inp, keras.layers.Dense(4, name="d2")(h))
    m = irbridge.load(km)
    assert graph_inputs(m) == {"tokens": ["batch", "tokens_dim1", 16]}
    check = m.metadata_props["irbridge.import_check"]
    lengths = {int(s.split("x")[1]) for s in check.split(" at ")[1].replace("tokens=", "").split("; ")}
    assert len(lengths) == 2 and min(lengths) >= 8, check  # two real lengths, never 1 alone
    for shape in [(2, 9, 16), (3, 21, 16)]:
        x = seeded(shape, seed=shape[1])
        assert_close(run_onnx(irbridge.normalize(m), x), np.asarray(km(x)))


def test_two_inputs_given_by_name_in_any_order():
    a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    km = keras.Model([a, b], keras.layers.Dense(3, name="fc")(keras.layers.Concatenate(name="cat")([a, b])))
    m = irbridge.load(km, inputs={"b": seeded((2, 4)), "a": seeded((2, 6))})
    assert graph_inputs(m) == {"a": ["batch", 6], "b": ["batch", 4]}
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")


def test_subclassed_model_takes_example_arrays_and_keeps_its_batch_free():
    net = Sub()
    net(np.zeros((1, 8, 8, 3), np.float32))  # built, as loading its weights does (MTCNN's nets)
    x = seeded((1, 8, 8, 3), seed=1)
    m = irbridge.load(net, inputs=(x,))
    assert graph_inputs(m) == {"x": ["batch", 8, 8, 3]}
    why = {e["axis"]: e["why"] for e in dims.fixed(m)}
    assert set(why) == {1, 2, 3} and "example" in why[1]  # said, not silently fixed
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")
    x3 = seeded((3, 8, 8, 3), seed=2)
    assert_close(run_onnx(irbridge.normalize(m), x3), np.asarray(net(x3)))


def test_a_never_built_subclassed_model_is_built_apart_from_the_users():
    net = Sub()
    m = irbridge.load(net, inputs=[seeded((2, 8, 8, 3))])
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")
    assert not net.built and not net.weights  # the user's model is never changed


def test_an_already_called_subclassed_model_needs_no_inputs():
    net = Sub()
    net(seeded((1, 8, 8, 3)))
    m = irbridge.load(net)
    assert graph_inputs(m) == {"x": ["batch", 8, 8, 3]} and dims.fixed(m) == []
    assert m.metadata_props["irbridge.import_check"].startswith("keras: ok")
    with pytest.raises(irbridge.InputError, match=r"inputs=\(x,\)"):
        irbridge.load(Sub())  # never built nor called: asks for an example


def test_tf_function_with_a_free_batch_stays_free():
    w = seeded((3, 3, 3, 4), seed=3)

    @tf.function(input_signature=[tf.TensorSpec((None, 8, 8, 3), tf.float32, name="x")])
    def f(x):
        return tf.nn.relu(tf.nn.conv2d(x, w, 1, "VALID"))

    m = irbridge.load(f)
    assert graph_inputs(m) == {"x": ["batch", 8, 8, 3]}
    assert "x=3x8x8x3" in m.metadata_props["irbridge.import_check"]
    x = seeded((5, 8, 8, 3), seed=4)
    assert_close(run_onnx(m, x), f(x).numpy())
    fixed = irbridge.load(f, inputs={"x": (2, 8, 8, 3)})
    assert graph_inputs(fixed) == {"x": [2, 8, 8, 3]}
    assert "inputs=" in dims.fixed(fixed)[0]["why"]


def test_savedmodel_with_a_free_batch_stays_free(tmp_path):
    w = tf.Variable(seeded((8, 4), seed=5))

    class Net(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 8), tf.float32, name="x")])
        def __call__(self, x):
            return tf.tanh(tf.matmul(x, w))

    net = Net()
    net.w = w
    tf.saved_model.save(net, str(tmp_path / "sm"))
    m = irbridge.load(tmp_path / "sm")
    [(name, shape)] = graph_inputs(m).items()
    assert shape == ["batch", 8], shape
    assert m.metadata_props["irbridge.import_check"].startswith("tensorflow: ok")
    x = seeded((6, 8), seed=6)
    assert_close(run_onnx(m, x), net(tf.constant(x)).numpy())


def test_a_legacy_h5_free_batch_stays_free_and_runs_at_two_batches(tmp_path):
    pytest.importorskip("h5py")
    from irbridge.models.legacy_h5 import write_vgg_style

    write_vgg_style(tmp_path / "m.h5", 1, "tf", "tensorflow")
    m = irbridge.load(tmp_path / "m.h5")
    [(name, shape)] = graph_inputs(m).items()
    assert shape[0] == "batch" and all(isinstance(d, int) for d in shape[1:])
    from irbridge.verify import onnx_runner

    runner = onnx_runner(irbridge.normalize(m))
    outs = [next(iter(runner.run({name: seeded((b, *shape[1:]), seed=7)[:b]}).values())) for b in (2, 3)]
    assert [o.shape[0] for o in outs] == [2, 3]
    assert_close(outs[1][:2], outs[0])  # the same seeded rows give the same answers at any batch
