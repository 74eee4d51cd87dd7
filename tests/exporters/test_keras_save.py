"""Saving a Keras export: the .keras file streams its weights (Keras writes the weights .h5 to
disk, unzipped, and irbridge zips it; not through memory) and reloads with keras.saving.load_model, matching onnxruntime; the
weights the importer maps leave memory once the Keras layers hold them; the check's Keras run
gives exactly what calling the model gives."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import assert_close, make_model, seeded

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install irbridge[tf])")

VOCAB, WIDTH, HIDDEN = 2048, 64, 2048  # the table and both kernels: 512 KB each, mapped


def _encoder(path: Path) -> dict[str, np.ndarray]:
    """A one-block text encoder (token Embedding, Dense-GELU-Dense with a residual, LayerNorm)
    with a free batch and sequence, written to `path`; its initializers by name."""
    w = {"table": seeded((VOCAB, WIDTH), seed=1), "w1": seeded((WIDTH, HIDDEN), seed=2) * 0.1,
         "b1": seeded((HIDDEN,), seed=3), "w2": seeded((HIDDEN, WIDTH), seed=4) * 0.1,
         "b2": seeded((WIDTH,), seed=5), "gamma": 1 + 0.1 * seeded((WIDTH,), seed=6),
         "beta": seeded((WIDTH,), seed=7)}
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="embeddings"),
             helper.make_node("MatMul", ["e", "w1"], ["h0"], name="fc1"),
             helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
             helper.make_node("Gelu", ["h1"], ["h2"], name="gelu", domain=""),
             helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2"),
             helper.make_node("Add", ["h3", "b2"], ["h4"], name="fc2_bias"),
             helper.make_node("Add", ["h4", "e"], ["h5"], name="residual"),
             helper.make_node("LayerNormalization", ["h5", "gamma", "beta"], ["y"], name="norm", axis=-1)]
    model = make_model(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", WIDTH])],
                       [numpy_helper.from_array(a, n) for n, a in w.items()], opset=20)
    onnx.save(model, path)
    return w


def _ids(batch: int, seq: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, seq)).astype(np.int64)


def _ort(path: Path, ids: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


def test_saved_keras_file_reloads_and_matches_onnxruntime(tmp_path):
    import irbridge
    import irbridge.keras_layers  # noqa: F401  (registers irbridge's layers, as a user would)

    weights = _encoder(tmp_path / "enc.onnx")
    res = irbridge.convert(tmp_path / "enc.onnx", "keras", tmp_path / "enc.keras")
    assert res.report.ok, str(res.report)
    assert {"Embedding", "Dense", "LayerNormalization"} <= {type(x).__name__ for x in res.exported.layers}
    assert not list(tmp_path.glob(".*irbridge-tmp-*")), "a temporary was left beside the output"
    km = keras.saving.load_model(tmp_path / "enc.keras")
    table = next(x for x in km.layers if type(x).__name__ == "Embedding").get_weights()[0]
    np.testing.assert_array_equal(table, weights["table"])  # the weights went through the file intact
    for batch, seq in ((2, 9), (3, 13)):  # free dims at two sizes
        ids = _ids(batch, seq, seed=batch)
        assert_close(np.asarray(km(ids, training=False)), _ort(tmp_path / "enc.onnx", ids))


def test_irbridge_save_streams_the_weights(tmp_path, monkeypatch):
    """Keras writes the weights .h5 to a file (H5IOStore on a path, no zip archive to buffer it
    for), not through memory; the .keras holds exactly the entries Keras's own writer puts in one,
    the same config, and reloads to the same model."""
    import zipfile

    from keras.src.saving import saving_lib

    import irbridge

    _encoder(tmp_path / "enc.onnx")
    km = irbridge.export(irbridge.normalize(irbridge.load(tmp_path / "enc.onnx")), "keras", check=False)
    assert saving_lib.is_memory_sufficient(km), "Keras would buffer this model in memory: the test shows it does not"
    stores = []

    class Spy(saving_lib.H5IOStore):
        def __init__(self, path_or_io, archive=None, mode="r"):
            stores.append((path_or_io, archive, mode))
            super().__init__(path_or_io, archive=archive, mode=mode)

    monkeypatch.setattr(saving_lib, "H5IOStore", Spy)
    irbridge.save(km, tmp_path / "enc.keras")
    writes = [s for s in stores if s[2] == "w"]
    assert len(writes) == 1
    path, archive, _ = writes[0]
    assert archive is None and isinstance(path, (str, Path))
    monkeypatch.undo()
    assert not list(tmp_path.glob(".*irbridge-tmp-*")), "the scratch folder was left beside the output"
    km.save(tmp_path / "by_keras.keras")  # Keras's own writer, for comparison
    with zipfile.ZipFile(tmp_path / "enc.keras") as ours, zipfile.ZipFile(tmp_path / "by_keras.keras") as theirs:
        assert sorted(ours.namelist()) == sorted(theirs.namelist())
        assert ours.read("config.json") == theirs.read("config.json")
        assert all(i.compress_type == zipfile.ZIP_STORED for i in ours.infolist())
        assert ours.testzip() is None  # every entry's CRC right
        # written once: the zip was made around Keras's .h5 file, its data right after a
        # 512-byte local header (the HDF5 user block), and it reads as a complete .h5
        weights = ours.getinfo("model.weights.h5")
        assert weights.header_offset == 0 and ours.namelist()[-2:] == ["metadata.json", "config.json"]
        with open(tmp_path / "enc.keras", "rb") as f:
            assert f.read(520)[512:] == b"\x89HDF\r\n\x1a\n"
        import io

        import h5py

        with h5py.File(io.BytesIO(ours.read("model.weights.h5")), "r") as h5:
            assert len(h5.keys()) > 0
    got = keras.saving.load_model(tmp_path / "enc.keras")
    for a, b in zip(got.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
    ids = _ids(2, 8, seed=3)
    np.testing.assert_array_equal(np.asarray(got(ids)), np.asarray(km(ids)))


def test_a_failed_save_writes_nothing(tmp_path):
    import irbridge
    from irbridge.exporters.keras import save

    _encoder(tmp_path / "enc.onnx")
    km = irbridge.export(irbridge.normalize(irbridge.load(tmp_path / "enc.onnx")), "keras", check=False)
    (tmp_path / "out.keras").write_bytes(b"a good file")

    class Broken(keras.layers.Layer):
        def save_own_variables(self, store):
            raise RuntimeError("disk full")

    km.broken = Broken()  # tracked by the model: Keras saves its state too, and fails
    with pytest.raises(RuntimeError, match="disk full"):
        save(km, tmp_path / "out.keras")
    assert (tmp_path / "out.keras").read_bytes() == b"a good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.onnx", "out.keras"]


def _mapped_rss(path: Path) -> int:
    """Bytes of `path` resident in this process through its mappings (Linux /proc/self/smaps)."""
    total, inside = 0, False
    name = str(path.resolve())
    for line in open("/proc/self/smaps"):
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            inside = line.rstrip("\n").endswith(name)
        elif inside and line.startswith("Rss:"):
            total += int(head[1]) * 1024
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_mapped_weights_leave_memory_once_the_keras_layers_hold_them(tmp_path):
    """The importer maps the .onnx file's weights; after the Keras export none of the file's
    pages are resident, though the weights were all read (copied into the variables)."""
    import irbridge

    weights = _encoder(tmp_path / "enc.onnx")
    model = irbridge.normalize(irbridge.load(tmp_path / "enc.onnx"))
    for name in ("table", "w1", "w2"):
        model.graph.initializers[name].const_value.numpy().sum()  # read: resident
    assert _mapped_rss(tmp_path / "enc.onnx") >= 3 * 64 * 1024
    import tensorflow as tf

    resident = []

    def watch(next_creator, **kwargs):  # outside irbridge's own hook: runs after it, at each variable
        resident.append(_mapped_rss(tmp_path / "enc.onnx"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(watch):
        km = irbridge.export(model, "keras", check=False)
    # while the layers were made, at most about one weight of the file was resident at a time
    assert len(resident) >= 3 and max(resident) < 2 * 512 * 1024, resident
    assert _mapped_rss(tmp_path / "enc.onnx") == 0
    dense = [x for x in km.layers if type(x).__name__ == "Dense"]
    np.testing.assert_array_equal(dense[0].get_weights()[0], weights["w1"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_release_mapped_drops_the_pages_of_a_mapping_still_viewed(tmp_path):
    """A weight an array still views cannot be unmapped; its pages leave memory all the same and
    the array still reads the file's values."""
    import irbridge
    from irbridge._io import release_mapped

    weights = _encoder(tmp_path / "enc.onnx")
    model = irbridge.load(tmp_path / "enc.onnx")
    value = model.graph.initializers["table"]
    view = value.const_value.numpy()
    assert float(view.sum()) == pytest.approx(float(weights["table"].sum()), rel=1e-5)
    assert _mapped_rss(tmp_path / "enc.onnx") >= VOCAB * WIDTH * 4 // 2
    release_mapped([value])
    assert _mapped_rss(tmp_path / "enc.onnx") == 0
    np.testing.assert_array_equal(view, weights["table"])  # read again from the file
    np.testing.assert_array_equal(value.const_value.numpy(), weights["table"])


def test_the_checks_keras_run_equals_calling_the_model(tmp_path):
    """The check's runner frees each intermediate once read (call_freeing): the outputs are
    exactly those of `km(x, training=False)`, for a model with two inputs, two outputs, an
    intermediate read by several layers and an output also read inside the model."""
    from irbridge.exporters.keras.runner import call_freeing

    a, b = keras.Input((5, 8), name="a"), keras.Input((5, 8), name="b")
    h = keras.layers.Dense(16, name="fc")(keras.layers.Add(name="sum")([a, b]))
    h = keras.layers.Dropout(0.5, name="drop")(h)  # training=False must reach it
    y1 = keras.layers.LayerNormalization(name="norm")(h)
    y2 = keras.layers.Dense(3, name="head")(keras.layers.Concatenate(name="cat")([h, y1]))
    km = keras.Model([a, b], [y1, y2])
    xs = [seeded((2, 5, 8), seed=1), seeded((2, 5, 8), seed=2)]
    got, want = call_freeing(km, xs), km(xs, training=False)
    assert len(got) == 2
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    single = keras.Model(a, keras.layers.Dense(4, name="only")(a))
    x = seeded((3, 5, 8), seed=3)
    np.testing.assert_array_equal(np.asarray(call_freeing(single, x)), np.asarray(single(x, training=False)))


@pytest.mark.parametrize("room", [True, False], ids=["in_place", "copied"])
def test_pack_with_and_without_the_room(tmp_path, room):
    """keras_zip.pack makes the zip around the .h5 where Keras created it with the user block,
    and copies it into a new zip (Keras's entry order) where it did not; both reload equal.
    h5py.File is h5py's own class again after the save."""
    import zipfile

    import h5py

    import irbridge
    from irbridge.exporters.keras import keras_zip

    _encoder(tmp_path / "enc.onnx")
    km = irbridge.export(irbridge.normalize(irbridge.load(tmp_path / "enc.onnx")), "keras", check=False)
    folder, out = tmp_path / "model", tmp_path / "out.keras"
    original = h5py.File
    with keras_zip.room_for_the_header(folder / keras_zip.WEIGHTS) if room else contextlib.nullcontext():
        km.save(folder, zipped=False)
    assert h5py.File is original
    keras_zip.pack(folder, out)
    assert (folder / keras_zip.WEIGHTS).exists() != room  # moved into place, or copied from
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        first = zf.namelist()[0]
    assert first == (keras_zip.WEIGHTS if room else "metadata.json")
    got = keras.saving.load_model(out)
    for a, b in zip(got.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
