"""irbridge.bind / `irbridge bind`: weight files of every kind onto Keras, PyTorch and ONNX
architectures; ambiguity refused or settled by a reference; pickles refused."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

import irbridge
from tests.conftest import assert_close, seeded

R = np.random.default_rng(0)


def _dense_net_onnx(path, w1, w2):
    """x (2, 8) -> Gemm(fc1, transB) -> Relu -> Gemm(fc2, transB): square weights only."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gemm", ["x", "fc1.w"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "fc2.w"], ["y"], transB=1, name="fc2")]
    for n in nodes:
        n.metadata_props.add(key="irbridge.source", value=n.name)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
                              [numpy_helper.from_array(w1, "fc1.w"), numpy_helper.from_array(w2, "fc2.w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def test_a_pickle_payload_in_an_npy_is_refused_and_never_runs(tmp_path):
    canary = tmp_path / "canary"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {canary}",))

    arr = np.empty((), dtype=object)
    arr[()] = {"conv1": [np.zeros((2, 2), np.float32)], "evil": Payload()}
    with open(tmp_path / "evil.npy", "wb") as f:
        np.lib.format.write_array(f, arr, allow_pickle=True)
    with pytest.raises(irbridge.InputError) as e:
        irbridge.bind(tmp_path / "evil.npy", tmp_path / "whatever.onnx")
    assert "system" in e.value.message and "evil.npy" in e.value.message
    assert not canary.exists()


def test_a_python2_style_npy_dict_loads_through_the_restricted_loader(tmp_path):
    from irbridge.binding.npy import load_npy

    d = {"conv1_1": [seeded((3, 3, 3, 4)), seeded((4,), seed=1)], "names": "text", "n": 3}
    np.save(tmp_path / "w.npy", d, allow_pickle=True)
    (tmp_path / "w2.npy").write_bytes(_protocol2(d))
    for name in ("w.npy", "w2.npy"):
        got = load_npy(tmp_path / name)
        assert got["names"] == "text" and got["n"] == 3
        np.testing.assert_array_equal(got["conv1_1"][0], d["conv1_1"][0])


def _protocol2(obj) -> bytes:
    """The .npy of a 0-d object array pickled with protocol 2 (as Python 2 era files are)."""
    import io

    arr = np.empty((), dtype=object)
    arr[()] = obj
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    pickle.dump(arr, buf, protocol=2)
    return buf.getvalue()


def test_square_weights_alone_are_refused_then_settled_by_a_reference(tmp_path):
    w1, w2 = seeded((8, 8), seed=1), seeded((8, 8), seed=2)  # as stored in the file: (in, out)
    arch = _dense_net_onnx(tmp_path / "arch.onnx", np.eye(8, dtype=np.float32), np.eye(8, dtype=np.float32))
    np.savez(tmp_path / "w.npz", **{"fc1/kernel": w1, "fc2/kernel": w2})
    with pytest.raises(irbridge.InputError) as e:
        irbridge.bind(tmp_path / "w.npz", arch)
    assert "fits" in e.value.message and "--source-layout" in e.value.message and "--reference" in e.value.message
    x = seeded((2, 8), seed=3)
    expected = np.maximum(x @ w1, 0) @ w2  # the weights are (in, out): Keras's convention
    np.savez(tmp_path / "ref.npz", x=x, output=expected)
    res = irbridge.bind(tmp_path / "w.npz", arch, reference=tmp_path / "ref.npz")
    assert res.ok and res.convention == "tf"
    assert [a.transform for a in res.assigned] == ["IO -> OI: transpose(1, 0)"] * 2
    explicit = irbridge.bind(tmp_path / "w.npz", arch, source_layout="torch")  # taken as told: not transposed
    assert [a.transform for a in explicit.assigned] == ["as is"] * 2


def test_a_state_dict_file_onto_the_same_module_and_onto_keras(tmp_path, torch):
    keras = pytest.importorskip("keras")
    nn = torch.nn
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 5 * 5, 6)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    x = seeded((2, 3, 5, 5), seed=4)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()

    fresh = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 6)).eval()
    same = irbridge.bind(tmp_path / "net.pt", fresh)
    assert {a.transform for a in same.assigned} == {"as is"} and not same.unassigned
    with torch.no_grad():
        assert_close(same.model(torch.from_numpy(x)).numpy(), ref)
    assert not torch.equal(fresh[0].weight, net[0].weight)  # the architecture given is not changed

    inp = keras.Input((5, 5, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    y = keras.layers.BatchNormalization(epsilon=1e-5, name="bn")(y)
    y = keras.layers.ReLU(name="relu")(y)
    y = keras.layers.Flatten(name="flatten")(y)
    km = keras.Model(inp, keras.layers.Dense(6, name="fc")(y))
    res = irbridge.bind(tmp_path / "net.pt", km)  # names differ: paired in order, by shape
    t = {a.tensor: (a.target, a.transform) for a in res.assigned}
    assert t["0.weight"] == ("conv/kernel", "OIHW -> HWIO: transpose(2, 3, 1, 0)")
    assert t["1.running_var"][0] == "bn/moving_variance"
    assert "rows permuted from the CHW to the HWC flatten order" in t["4.weight"][1]
    got = np.asarray(res.model(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), training=False))
    assert_close(got, ref)


def test_keras3_weights_file_and_an_explicit_map(tmp_path):
    keras = pytest.importorskip("keras")

    def build(names):
        inp = keras.Input((6,))
        h = keras.layers.Dense(5, activation="relu", name=names[0])(inp)
        return keras.Model(inp, keras.layers.Dense(3, name=names[1])(h))

    src = build(["a", "b"])
    src.save_weights(tmp_path / "src.weights.h5")
    x = seeded((2, 6), seed=5)
    res = irbridge.bind(tmp_path / "src.weights.h5", build(["hidden", "out"]))
    assert_close(np.asarray(res.model(x)), np.asarray(src(x)))
    # Keras 3 weight files name layers by class (dense, dense_1); a wrong map is caught by shape
    (tmp_path / "map.json").write_text(json.dumps({"dense": "out", "dense_1": "hidden"}))
    with pytest.raises(irbridge.InputError) as e:
        irbridge.bind(tmp_path / "src.weights.h5", build(["hidden", "out"]), mapping=tmp_path / "map.json")
    assert "do not fit" in e.value.message


def test_cli_bind_json_and_exit_codes(tmp_path, capsys):
    from irbridge.cli import main

    w1, w2 = seeded((8, 8), seed=1), seeded((8, 8), seed=2)
    arch = _dense_net_onnx(tmp_path / "arch.onnx", np.eye(8, dtype=np.float32), np.eye(8, dtype=np.float32))
    np.savez(tmp_path / "w.npz", **{"fc1.weight": w1, "fc2.weight": w2})
    code = main(["bind", str(tmp_path / "w.npz"), "--onto", str(arch), "-o", str(tmp_path / "bound.onnx"),
                 "--source-layout", "torch", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"] and out["output"] == str(tmp_path / "bound.onnx")
    assert [a["target"] for a in out["assigned"]] == ["fc1.w", "fc2.w"] and out["unassigned"] == []
    from tests.conftest import ort_run

    x = seeded((2, 8), seed=6)
    import onnx

    assert_close(ort_run(onnx.load(tmp_path / "bound.onnx"), {"x": x})[0], np.maximum(x @ w1.T, 0) @ w2.T)

    np.savez(tmp_path / "ref.npz", x=x, output=np.zeros((2, 8), np.float32))  # a reference nothing matches
    code = main(["bind", str(tmp_path / "w.npz"), "--onto", str(arch), "-o", str(tmp_path / "no.onnx"),
                 "--reference", str(tmp_path / "ref.npz"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and not out["ok"] and out["output"] is None and not (tmp_path / "no.onnx").exists()

    code = main(["bind", str(tmp_path / "missing.npz"), "--onto", str(arch), "-o", str(tmp_path / "x.onnx"),
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["error"]["kind"] == "bad_input" and "missing.npz" in out["error"]["message"]


def test_tensor_level_map_puts_caffe_batchnorm_and_scale_onto_one_keras_layer(tmp_path):
    keras = pytest.importorskip("keras")
    from irbridge.models.caffe_zoo import write_blobs

    rng = np.random.default_rng(4)
    mean, var, factor = rng.standard_normal(3), rng.uniform(0.5, 2, 3), 8.0
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    write_blobs(tmp_path / "bn.caffemodel", {"bn": [mean * factor, var * factor, np.array([factor])],
                                             "sc": [gamma, beta]}, types={"bn": "BatchNorm", "sc": "Scale"})
    inp = keras.Input((4, 4, 3))
    km = keras.Model(inp, keras.layers.BatchNormalization(epsilon=1e-5, name="bn")(inp))
    mapping = {"bn/0": "bn/moving_mean", "bn/1": "bn/moving_variance", "sc/0": "bn/gamma", "sc/1": "bn/beta"}
    res = irbridge.bind(tmp_path / "bn.caffemodel", km, mapping=mapping)
    assert sorted(a.target for a in res.assigned) == sorted(mapping.values()) and not res.unfilled
    x = seeded((2, 4, 4, 3), seed=9)
    want = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta  # Caffe's stats divided by the factor
    assert_close(np.asarray(res.model(x, training=False)), want)


def test_caffe2_style_names_bind_by_name_not_by_order(tmp_path):
    """The ONNX zoo's SqueezeNet names its weights Caffe2's way (`fire2/expand1x1_w_0`): each
    binds to its own layer, biases included, and the bound net computes what the source does."""
    import onnx
    from irbridge.models import onnx_zoo
    from onnx import numpy_helper

    from tests.conftest import ort_run

    source = onnx_zoo.light_model("squeezenet", seed=0)
    weights = {t.name: numpy_helper.to_array(t) for t in source.graph.initializer if t.dims}
    np.savez(tmp_path / "w.npz", **weights)
    arch = tmp_path / "arch.onnx"
    onnx.save(onnx_zoo.light_model("squeezenet", seed=1), arch)
    res = irbridge.bind(str(tmp_path / "w.npz"), str(arch))
    assert res.ok and not res.unassigned
    by_tensor = {a.tensor: a.target for a in res.assigned}
    assert by_tensor["fire3/expand1x1_w_0"].startswith("fire3/expand1x1")
    assert any("fire2/expand1x1_b_0" == t for t in by_tensor)
    x = seeded((1, 3, 224, 224))
    np.testing.assert_array_equal(ort_run(irbridge.save(res.model, tmp_path / "bound.onnx") and
                                          onnx.load(tmp_path / "bound.onnx"), {"data_0": x})[0],
                                  ort_run(source, {"data_0": x})[0])
