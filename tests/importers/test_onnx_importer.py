"""ONNX importer: files, protos and onnx_ir models; opset upgrade; provenance; bad files."""

from __future__ import annotations

import onnx
import onnx_ir as ir
import pytest
from irbridge.models import onnx_zoo
from onnx import TensorProto, helper, numpy_helper

import irbridge
from tests.conftest import assert_close, make_model, ort_run, seeded


def _small(opset=18):
    w = numpy_helper.from_array(seeded((4, 3, 3, 3)), "conv1_w_0")
    nodes = [helper.make_node("Conv", ["x", "conv1_w_0"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w], opset=opset)


@pytest.mark.parametrize("kind", ["path", "proto", "ir"])
def test_load_accepts_files_protos_and_ir_models(kind, tmp_path):
    proto = _small()
    src = {"path": tmp_path / "m.onnx", "proto": proto, "ir": ir.serde.deserialize_model(proto)}[kind]
    if kind == "path":
        onnx.save(proto, src)
    m = irbridge.load(src)
    assert isinstance(m, ir.Model)
    assert m.metadata_props["irbridge.source_format"] == "onnx"
    conv = next(n for n in m.graph if n.op_type == "Conv")
    assert conv.metadata_props["irbridge.source"] == "conv1"  # from the weight's name
    assert conv.metadata_props["irbridge.source_op"] == "Conv"


def test_loading_an_ir_model_does_not_mutate_it():
    src = ir.serde.deserialize_model(_small())
    before = ir.to_proto(src).SerializeToString()
    irbridge.normalize(irbridge.load(src))
    assert ir.to_proto(src).SerializeToString() == before


def test_old_opsets_are_upgraded_to_18_and_keep_their_outputs():
    model = onnx_zoo.light_model("squeezenet", seed=0)
    assert model.opset_import[0].version == 9
    m = irbridge.load(model)
    assert m.opset_imports[""] == 18
    assert m.metadata_props["irbridge.source_opset"] == "9"
    feeds = {"data_0": seeded((1, 3, 224, 224))}
    assert_close(ort_run(m, feeds)[0], ort_run(model, feeds)[0])


def test_newer_opsets_are_kept():
    m = irbridge.load(_small(opset=21))
    assert m.opset_imports[""] == 21


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(irbridge.InputError, match="no such file"):
        irbridge.load(tmp_path / "nope.onnx")


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(irbridge.InputError, match="bad.onnx"):
        irbridge.load(bad)


def test_external_data_outside_the_model_directory_is_refused(tmp_path):
    proto = _small()
    t = proto.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../etc/passwd"
    onnx.save(proto, tmp_path / "m.onnx")
    with pytest.raises(irbridge.InputError, match="outside"):
        irbridge.load(tmp_path / "m.onnx")


def test_pickled_torch_files_are_refused(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"not read")
    with pytest.raises(irbridge.UnsupportedError, match="never unpickles"):
        irbridge.load(p)


def test_external_data_inside_the_directory_loads(tmp_path):
    proto = _small()
    onnx.save(proto, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.data", size_threshold=0)
    from irbridge.verify import onnx_runner

    m = irbridge.load(tmp_path / "m.onnx")
    feeds = {"x": seeded((1, 3, 8, 8))}
    assert_close(onnx_runner(m).run(feeds)["y"], ort_run(_small(), feeds)[0])
