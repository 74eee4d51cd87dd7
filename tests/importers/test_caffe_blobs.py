"""Reading .caffemodel files without copying the weights, and writing .onnx files the same way."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from irbridge.models.caffe_zoo import write_blobs

from irbridge.importers.caffe_blobs import read_caffemodel
from irbridge.protowire import encode_varint, field_key
from tests.conftest import seeded

PROTO = '''name: "n" layer { name: "data" type: "Input" top: "data"
  input_param { shape: { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }'''


def _blobs():
    rng = np.random.default_rng(0)
    return {"conv": [rng.standard_normal((4, 3, 3, 3)).astype(np.float32), rng.standard_normal(4).astype(np.float32)],
            "fc": [rng.standard_normal((5, 144)).astype(np.float32), rng.standard_normal(5).astype(np.float32)]}


def test_blobs_are_views_of_the_mapped_file(tmp_path):
    import irbridge

    blobs = _blobs()
    write_blobs(tmp_path / "n.caffemodel", blobs)
    net, read = read_caffemodel(tmp_path / "n.caffemodel")
    assert [ly.name for ly in net.layer] == ["conv", "fc"] and not any(ly.blobs for ly in net.layer)
    for name, arrays in blobs.items():
        for want, got in zip(arrays, read[name]):
            np.testing.assert_array_equal(got, want)
            assert not got.flags.owndata and not got.flags.writeable  # a view of the mapping, not a copy
    (tmp_path / "n.prototxt").write_text(PROTO)
    m = irbridge.load(tmp_path / "n.prototxt", tmp_path / "n.caffemodel")
    weights = m.graph.initializers["conv/weights"].const_value.numpy()
    assert not weights.flags.owndata  # still the view: the importer copied nothing


def test_legacy_unpacked_values_and_v1_dims(tmp_path):
    """Blob values written one field each (not packed), with the V1 num/channels/height/width."""
    values = seeded((2, 3), seed=1).reshape(-1)
    blob = b"".join(bytes([n << 3]) + encode_varint(d) for n, d in zip((1, 2, 3, 4), (1, 1, 2, 3)))
    blob += b"".join(b"\x2d" + struct.pack("<f", v) for v in values)  # field 5, wire type 5
    layer = b"\x22" + encode_varint(2) + b"ip"  # V1 name = 4
    layer += field_key(6) + encode_varint(len(blob)) + blob
    (tmp_path / "v1.caffemodel").write_bytes(field_key(2) + encode_varint(len(layer)) + layer)
    net, blobs = read_caffemodel(tmp_path / "v1.caffemodel")
    assert net.layers[0].name == "ip"
    np.testing.assert_array_equal(blobs["ip"][0], values.reshape(1, 1, 2, 3))


@pytest.mark.parametrize("damage", ["truncated", "wrong-size", "garbage"])
def test_damaged_caffemodels_are_refused_with_the_file_named(damage, tmp_path):
    import irbridge

    path = tmp_path / "n.caffemodel"
    blobs = _blobs()
    if damage == "wrong-size":  # a blob whose shape says more values than it holds
        blobs["fc"][0] = blobs["fc"][0][:4]
        write_blobs(path, blobs)
        data = path.read_bytes()
        shape = b"\x0a\x03" + encode_varint(4) + encode_varint(144)  # BlobShape: packed dims 4, 144
        assert data.count(shape) == 1
        path.write_bytes(data.replace(shape, b"\x0a\x03" + encode_varint(5) + encode_varint(144)))
    else:
        write_blobs(path, blobs)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(range(256)) * 4)
    (tmp_path / "n.prototxt").write_text(PROTO)
    with pytest.raises(irbridge.InputError) as e:
        irbridge.load(tmp_path / "n.prototxt", path)
    assert str(path) in e.value.message
    if damage == "wrong-size":
        assert "layer fc" in e.value.message


def test_a_caffemodel_missing_a_layers_weights_is_refused(tmp_path):
    import irbridge

    write_blobs(tmp_path / "n.caffemodel", {"conv": _blobs()["conv"]})
    (tmp_path / "n.prototxt").write_text(PROTO)
    with pytest.raises(irbridge.InputError) as e:
        irbridge.load(tmp_path / "n.prototxt", tmp_path / "n.caffemodel")
    assert e.value.nodes == ["fc"]


def test_streamed_onnx_files_equal_protobufs_own(tmp_path):
    """The .onnx written piecewise parses to the same model protobuf itself would write."""
    import onnx
    import onnx_ir as ir

    import irbridge
    from irbridge.exporters import onnx as onnx_exporter

    rng = np.random.default_rng(0)
    big = rng.standard_normal((600, 500)).astype(np.float32)  # over STREAMED_BYTES: written from its memory
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 500])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 600])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "g", [x], [y],
        [onnx.numpy_helper.from_array(big, "w"), onnx.numpy_helper.from_array(rng.standard_normal(600).astype(np.float32), "b")])
    model = ir.serde.deserialize_model(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]))
    model.graph.initializers["w"].const_value = ir.Tensor(big, name="w")
    assert onnx_exporter._streamable(model.graph.initializers["w"].const_value)
    irbridge.save(model, tmp_path / "a.onnx")
    irbridge.save(model, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    got = onnx.load(tmp_path / "a.onnx")
    onnx.checker.check_model(got, full_check=True)
    want = ir.to_proto(model)
    assert {t.name: onnx.numpy_helper.to_array(t).tobytes() for t in got.graph.initializer} == \
        {t.name: onnx.numpy_helper.to_array(t).tobytes() for t in want.graph.initializer}
    for field in ("node", "input", "output"):
        assert list(getattr(got.graph, field)) == list(getattr(want.graph, field))
    assert got.opset_import == want.opset_import and got.ir_version == want.ir_version
