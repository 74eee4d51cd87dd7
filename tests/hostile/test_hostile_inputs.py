"""Crafted, hostile and damaged inputs (DESIGN.md §7, issue 8). Each case is a file the test
suite writes; running irbridge's CLI on it must end with exit code 2, a JSON error naming the
file, no output written, and — where the file tries to run code — no canary file created."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

CANARY = "canary"


class Payload:
    """Unpickling this runs a shell command that creates the canary file."""

    def __init__(self, folder: Path):
        self.cmd = f"touch {folder / CANARY}"

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _onnx_model(w: np.ndarray | None = None) -> onnx.ModelProto:
    w = np.arange(12, dtype=np.float32).reshape(3, 4) if w is None else w
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                              [numpy_helper.from_array(w, "w")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    return m


def _external(d: Path, location: str, offset: int = 0, length: int | None = None, data: bytes | None = None):
    """model.onnx whose weight `w` (48 bytes) lives at `location`."""
    m = _onnx_model()
    t = m.graph.initializer[0]
    raw = t.raw_data
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(len(raw) if length is None else length))):
        t.external_data.add(key=k, value=v)
    onnx.save(m, d / "model.onnx")
    return raw if data is None else data


def case_npy_pickle(d):
    arr = np.empty((), dtype=object)
    arr[()] = {"w": np.zeros(3, np.float32), "x": Payload(d)}
    with open(d / "w.npy", "wb") as f:
        np.lib.format.write_array(f, arr, allow_pickle=True)
    return ["bind", str(d / "w.npy"), "--onto", str(_saved_onnx(d)), "-o", str(d / "out.onnx")]


def case_npz_object_array(d):
    buf = d / "w.npz"
    with zipfile.ZipFile(buf, "w") as z, z.open("w.npy", "w") as f:
        arr = np.array([Payload(d)], dtype=object)
        np.lib.format.write_array(f, arr, allow_pickle=True)
    return ["bind", str(buf), "--onto", str(_saved_onnx(d)), "-o", str(d / "out.onnx")]


def case_state_dict_pickle(d):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(3), "x": Payload(d)}, d / "sd.pt")
    return ["bind", str(d / "sd.pt"), "--onto", str(_saved_onnx(d)), "-o", str(d / "out.onnx")]


def case_torch_model_file(d):
    (d / "model.pt").write_bytes(pickle.dumps(Payload(d)))
    return ["convert", str(d / "model.pt"), "--to", "onnx", "-o", str(d / "out.onnx")]


def case_keras_lambda(d):
    keras = pytest.importorskip("keras")
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2, name="evil")(inp))
    model.save(d / "m.keras")
    return ["convert", str(d / "m.keras"), "--to", "onnx", "-o", str(d / "out.onnx")]


def _legacy_h5(d, layers, hook=None):
    h5py = pytest.importorskip("h5py")
    config = {"class_name": "Sequential", "config": [{"class_name": k, "config": c} for k, c in layers]}
    with h5py.File(d / "m.h5", "w") as f:
        f.attrs["keras_version"] = "1.2.2"
        f.attrs["backend"] = "theano"
        f.attrs["model_config"] = json.dumps(config).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [c["name"].encode() for _, c in layers]
        for _, c in layers:
            g.create_group(c["name"]).attrs["weight_names"] = []
        if hook:
            hook(f, g, h5py)
    return ["convert", str(d / "m.h5"), "--to", "onnx", "-o", str(d / "out.onnx")]


def case_h5_lambda(d):
    return _legacy_h5(d, [("Dense", {"name": "d", "output_dim": 2, "batch_input_shape": [None, 3]}),
                          ("Lambda", {"name": "evil", "function": "os.system('touch canary')"})])


def case_h5_external_link(d):
    def hook(f, g, h5py):
        g["d"]["link"] = h5py.ExternalLink("/etc/passwd", "/")
    return _legacy_h5(d, [("Dense", {"name": "d", "output_dim": 2, "batch_input_shape": [None, 3]})], hook)


def case_h5_external_storage(d):
    (d / "raw.bin").write_bytes(b"\0" * 24)

    def hook(f, g, h5py):
        g["d"].create_dataset("d_W", shape=(3, 2), dtype="f4", external=[(str(d / "raw.bin"), 0, 24)])
    return _legacy_h5(d, [("Dense", {"name": "d", "output_dim": 2, "batch_input_shape": [None, 3]})], hook)


def case_h5_virtual_dataset(d):
    def hook(f, g, h5py):
        layout = h5py.VirtualLayout(shape=(3, 2), dtype="f4")
        layout[:] = h5py.VirtualSource("/etc/other.h5", "data", shape=(3, 2))
        g["d"].create_virtual_dataset("d_W", layout)
    return _legacy_h5(d, [("Dense", {"name": "d", "output_dim": 2, "batch_input_shape": [None, 3]})], hook)


def case_h5_overdeclared_dataset(d):
    def hook(f, g, h5py):
        g["d"].create_dataset("d_W", shape=(200_000, 100_000), dtype="f4", chunks=(1000, 1000))  # 80 GB, none stored
        g["d"].attrs["weight_names"] = [b"d_W"]
    return _legacy_h5(d, [("Dense", {"name": "d", "output_dim": 100_000, "batch_input_shape": [None, 200_000]})],
                      hook)


def case_caffe_python_layer(d):
    (d / "net.prototxt").write_text('''name: "n" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 3 dim: 4 dim: 4 } } }
    layer { name: "py" type: "Python" bottom: "data" top: "py"
      python_param { module: "os" layer: "system" } }''')
    return ["convert", str(d / "net.prototxt"), "--to", "onnx", "-o", str(d / "out.onnx"), "--random-weights"]


def case_caffemodel_huge_blob(d):
    from irbridge.protowire import encode_varint, field_key

    shape = b"\x0a\x06" + encode_varint(1 << 20) + encode_varint(1 << 20)  # 2^40 values declared
    blob = field_key(7) + encode_varint(len(shape)) + shape + field_key(5) + encode_varint(8) + b"\0" * 8
    layer = b"\x0a\x02fc" + field_key(7) + encode_varint(len(blob)) + blob
    (d / "w.caffemodel").write_bytes(field_key(100) + encode_varint(len(layer)) + layer)
    (d / "net.prototxt").write_text('''name: "n" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 3 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }''')
    return ["convert", str(d / "net.prototxt"), str(d / "w.caffemodel"), "--to", "onnx", "-o", str(d / "out.onnx")]


def case_tf_graph_reads_files(d):
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec((), tf.string, name="p")])
    def read(p):
        return tf.io.read_file(p)

    (d / "g.pb").write_bytes(read.get_concrete_function().graph.as_graph_def().SerializeToString())
    return ["convert", str(d / "g.pb"), "--to", "onnx", "-o", str(d / "out.onnx")]


def case_onnx_external_absolute(d):
    (d / "w.bin").write_bytes(_external(d, str(d / "w.bin")))
    return _convert_model(d)


def case_onnx_external_dotdot(d):
    sub = d / "inner"
    sub.mkdir()
    (d / "w.bin").write_bytes(_external(sub, "../w.bin"))
    return ["convert", str(sub / "model.onnx"), "--to", "onnx", "-o", str(d / "out.onnx")]


def case_onnx_external_symlink(d):
    outside = d.parent / f"{d.name}-secret.bin"
    outside.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    _external(d, "w.bin")
    (d / "w.bin").symlink_to(outside)
    return _convert_model(d)


def case_onnx_external_hardlink(d):
    outside = d.parent / f"{d.name}-other.bin"
    outside.write_bytes(_external(d, "w.bin"))
    os.link(outside, d / "w.bin")
    return _convert_model(d)


def case_onnx_external_past_the_end(d):
    (d / "w.bin").write_bytes(_external(d, "w.bin", offset=40))
    return _convert_model(d)


def case_onnx_external_wrong_length(d):
    (d / "w.bin").write_bytes(_external(d, "w.bin", length=16) * 2)
    return _convert_model(d)


def case_onnx_huge_inline_tensor(d):
    m = _onnx_model()
    m.graph.initializer[0].dims[:] = [1 << 20, 1 << 20]  # 4 TB declared, 48 bytes held
    onnx.save(m, d / "model.onnx")
    return _convert_model(d)


def case_onnx_truncated(d):
    data = _onnx_model(np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)).SerializeToString()
    (d / "model.onnx").write_bytes(data[: len(data) // 2])
    return _convert_model(d)


def case_npy_huge_header(d):
    with open(d / "w.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
        f.write(b"\0" * 64)
    return ["bind", str(d / "w.npy"), "--onto", str(_saved_onnx(d)), "-o", str(d / "out.onnx")]


def case_npz_huge_member(d):
    with zipfile.ZipFile(d / "w.npz", "w") as z, z.open("w.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
        f.write(b"\0" * 64)
    return ["bind", str(d / "w.npz"), "--onto", str(_saved_onnx(d)), "-o", str(d / "out.onnx")]


def case_safetensors_bad_header(d):
    header = json.dumps({"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}}).encode()
    (d / "w.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    return ["bind", str(d / "w.safetensors"), "--onto", str(_saved_onnx(d)), "-o", str(d / "out.onnx")]


def _saved_onnx(d: Path) -> Path:
    onnx.save(_onnx_model(), d / "arch.onnx")
    return d / "arch.onnx"


def _convert_model(d: Path) -> list[str]:
    return ["convert", str(d / "model.onnx"), "--to", "onnx", "-o", str(d / "out.onnx")]


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}
RUNS_CODE = {"npy_pickle", "npz_object_array", "state_dict_pickle", "torch_model_file", "keras_lambda",
             "h5_lambda", "caffe_python_layer"}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_refused_cleanly(case, tmp_path, capsys):
    from irbridge.cli import main

    d = tmp_path / "case"
    d.mkdir()
    argv = CASES[case](d)
    out = Path(argv[argv.index("-o") + 1])
    code = main(argv + ["--json"])
    printed = capsys.readouterr().out
    report = json.loads(printed)
    assert code == 2, printed
    assert report["ok"] is False and report["error"]["kind"] in ("bad_input", "unsupported"), printed
    inputs = [Path(a).name for a in argv[1:] if a.startswith(str(tmp_path)) and Path(a) != out]
    assert any(name in report["error"]["message"] for name in inputs), printed  # names the file at fault
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if "irbridge-tmp" in p.name]
    if case in RUNS_CODE:
        assert not (d / CANARY).exists() and not Path(CANARY).exists()


def test_there_are_at_least_fifteen_cases():
    assert len(CASES) >= 15


def test_trust_pickle_opts_in_for_a_whole_module_file(tmp_path, torch):
    from irbridge.cli import main

    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    torch.save(net, tmp_path / "net.pt")
    argv = ["convert", str(tmp_path / "net.pt"), "--to", "onnx", "-o", str(tmp_path / "net.onnx"),
            "--input", "x:1,3"]
    assert main(argv) == 2 and not (tmp_path / "net.onnx").exists()  # refused by default
    assert main(argv + ["--trust-pickle"]) == 0 and (tmp_path / "net.onnx").exists()


def test_a_killed_runs_temporaries_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from irbridge._io import atomic_path

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".out.onnx.irbridge-tmp-{dead}-abc"
    stale.write_bytes(b"half a file")
    (tmp_path / "out.onnx").write_bytes(b"the good file")
    mine = tmp_path / f".x.irbridge-tmp-{os.getpid()}-live"  # a running process's temporary stays
    mine.write_bytes(b"")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.onnx") as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("the write fails half way")
    assert (tmp_path / "out.onnx").read_bytes() == b"the good file"  # the previous file is intact
    assert not stale.exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.onnx", mine.name])


def test_a_node_attribute_named_in_broken_utf8_is_refused_with_the_node(tmp_path):
    """Found by the fuzzer: a flipped byte in an attribute's name makes onnx_ir fail inside
    deserialization (a bytes key); the importer says which file and node."""
    import irbridge

    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv_7", strides=[1, 1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    path = tmp_path / "broken.onnx"
    path.write_bytes(data.replace(b"strides", b"str\xffdes"))
    with pytest.raises(irbridge.InputError) as e:
        irbridge.load(path)
    assert str(path) in e.value.message
