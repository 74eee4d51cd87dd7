"""Checks at real sizes: every free dim run at two sizes (never 1 alone), sizes the graph
accepts found on the reference, integer inputs in range, bad shapes refused before anything is
allocated, and each output held to its own dtype's tolerance."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

import irbridge
from irbridge import cli
from irbridge.errors import InputError
from irbridge.verify import Runner, compare, reference_run, verify, verify_against
from irbridge.verify.inputs import integer_ranges, random_inputs
from tests.conftest import seeded


def _model(nodes, inputs, outputs, inits=(), opset=18) -> ir.Model:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ir.serde.deserialize_model(proto)


def _encoder() -> ir.Model:
    """ids (batch, sequence) -> embedding table of 30 rows; mask (batch, sequence) zeroes padding."""
    table = helper.make_tensor("table", TensorProto.FLOAT, (30, 4), seeded((30, 4)).ravel())
    return _model(
        [helper.make_node("Gather", ["table", "ids"], ["emb"]),
         helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["maskf", "axes"], ["mask3"]),
         helper.make_node("Mul", ["emb", "mask3"], ["y"])],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", 4])],
        [table, helper.make_tensor("axes", TensorProto.INT64, (1,), [2])])


def test_every_free_dim_is_checked_at_two_real_sizes():
    rep = verify(_encoder(), _encoder())
    assert rep.ok
    assert len(rep.shapes) == 2
    (b1, s1), (b2, s2) = rep.shapes[0]["ids"], rep.shapes[1]["ids"]
    assert {b1, b2} == {2, 3} and s1 != s2 and min(s1, s2) >= 8
    assert rep.shapes[0]["mask"] == rep.shapes[0]["ids"]  # a named dim has one size per run
    assert rep.to_dict()["shapes"][1]["ids"] == [b2, s2]


def test_a_candidate_right_only_at_batch_1_fails_the_check():
    """The bug that let a broken PyTorch export pass: flattening with a baked batch of 1."""
    model = _model([helper.make_node("Flatten", ["x"], ["y"], axis=1)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 20])])
    baked = Runner(["x"], ["y"], lambda f: {"y": f["x"].reshape(1, -1)})
    ref = reference_run(model)
    rep = verify_against(ref, baked)
    assert not rep.ok
    assert "shape" in rep.outputs[0].note


def test_a_candidate_that_raises_at_a_size_fails_with_the_error_in_the_report():
    model = _model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])

    def run(feeds):
        if feeds["x"].shape[0] != 2:
            raise IndexError("index 1 is out of bounds")
        return {"y": np.maximum(feeds["x"], 0)}

    rep = verify_against(reference_run(model), Runner(["x"], ["y"], run))
    assert not rep.ok
    assert "IndexError" in rep.first_divergence.hint and "x 3x3" in rep.first_divergence.hint


@pytest.mark.parametrize("raw_samples", [False, True], ids=["batch-1-samples", "batch-samples"])
def test_a_conv_stack_that_needs_400_samples_is_checked_at_sizes_it_accepts(raw_samples):
    """wav2vec2 reads (batch, samples) and unsqueezes a channel axis: the samples axis is not
    the conv's channels, though it is axis 1 of the input."""
    w = helper.make_tensor("w", TensorProto.FLOAT, (2, 1, 400), seeded((2, 1, 400)).ravel())
    nodes = [helper.make_node("Conv", ["x1" if raw_samples else "x", "w"], ["y"], strides=[5])]
    shape = ["batch", 1, "samples"]
    if raw_samples:
        nodes.insert(0, helper.make_node("Unsqueeze", ["x", "axes"], ["x1"]))
        shape = ["batch", "samples"]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, "frames"])],
                   [w, helper.make_tensor("axes", TensorProto.INT64, (1,), [1])])
    ref = reference_run(model)
    sizes = [f["x"].shape for f, _ in ref.runs]
    assert [s[0] for s in sizes] == [2, 3]
    assert sizes[0][-1] != sizes[1][-1] and min(s[-1] for s in sizes) >= 400


def test_channels_a_conv_fixes_are_taken_from_its_weight():
    """Optimum marks every axis of pixel_values dynamic; the channels must still be 3."""
    w = helper.make_tensor("w", TensorProto.FLOAT, (4, 3, 3, 3), seeded((4, 3, 3, 3)).ravel())
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "channels", "h", "w"])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    ref = reference_run(model)
    assert [f["x"].shape[1] for f, _ in ref.runs] == [3, 3]
    assert ref.runs[0][0]["x"].shape[2] >= 8


def test_a_dim_the_graph_accepts_at_one_size_only_is_said():
    pos = helper.make_tensor("pos", TensorProto.FLOAT, (1, 224, 4), seeded((1, 224, 4)).ravel())
    model = _model([helper.make_node("Add", ["x", "pos"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [pos])
    rep = verify(model, model)
    assert rep.ok and [s["x"] for s in rep.shapes] == [(2, 224, 4), (3, 224, 4)]
    assert any("tokens checked at 224 only" in n for n in rep.notes)


def test_integer_inputs_stay_in_the_range_the_graph_accepts():
    model = _encoder()
    ranges = integer_ranges(model)
    assert ranges == {"ids": ("ids", 30), "mask": ("mask",)}
    feeds = random_inputs([("ids", (3, 40), np.int64), ("mask", (3, 40), np.int64)], 0, ranges)
    assert feeds["ids"].max() < 30 and feeds["ids"].max() > 3  # not 0..3
    mask = feeds["mask"]
    assert set(np.unique(mask)) <= {0, 1} and mask[:, 0].all() and not mask.all()
    assert np.all(np.diff(mask, axis=1) <= 0)  # ones, then padding


@pytest.mark.parametrize("shape, words", [
    ((1, -3), "below 1"),
    ((2,), "has 1 dims"),
    ((1, 1048576, 1048576), "may take"),
])
def test_bad_declared_shapes_are_refused_with_the_input_and_the_flag(shape, words):
    model = _model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M", "K"])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(InputError) as e:
        reference_run(model, inputs={"x": shape})
    assert words in e.value.message and "--input x:" in e.value.message


def test_the_cli_refuses_a_huge_input_with_exit_2_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "relu.onnx"
    model = _model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M", "K"])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    irbridge.save(model, path)
    out = tmp_path / "out.onnx"
    code = cli.main(["convert", str(path), "--to", "onnx", "-o", str(out), "--input", "x:1,1048576,1048576",
                     "--json"])
    err = json.loads(capsys.readouterr().out)["error"]
    assert code == 2 and not out.exists()
    assert err["kind"] == "bad_input" and "'x'" in err["message"] and "--input" in err["message"]
    code = cli.main(["convert", str(path), "--to", "onnx", "-o", str(out), "--input", "x:1,-4,2", "--json"])
    assert code == 2 and "below 1" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_a_conversion_with_input_reports_its_fixed_dims(tmp_path, capsys):
    path = tmp_path / "enc.onnx"
    irbridge.save(_encoder(), path)
    out = tmp_path / "enc_fixed.onnx"
    assert cli.main(["convert", str(path), "--to", "onnx", "-o", str(out), "--input", "ids:2,16",
                     "--input", "mask:2,16", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    fixed = {(f["input"], f["axis"]): f["size"] for f in d["dims"]["fixed"]}
    assert fixed == {("ids", 0): 2, ("ids", 1): 16, ("mask", 0): 2, ("mask", 1): 16}
    assert d["dims"]["free"] == [] and d["check"]["shapes"] == [{"ids": [2, 16], "mask": [2, 16]}]
    saved = irbridge.load(out)
    assert [d if isinstance(d, int) else None for d in saved.graph.inputs[0].shape] == [2, 16]
    assert "fixed by --input" in saved.metadata_props["irbridge.fixed_dims"]
    assert cli.main(["inspect", str(path), "--json"]) == 0
    free = json.loads(capsys.readouterr().out)["dims"]["free"]
    assert {(f["input"], f["axis"], f["label"]) for f in free} == {
        ("ids", 0, "batch"), ("ids", 1, "sequence"), ("mask", 0, "batch"), ("mask", 1, "sequence")}


def test_without_input_a_conversion_keeps_the_dims_free_and_lists_both_sizes(tmp_path, capsys):
    path = tmp_path / "enc.onnx"
    irbridge.save(_encoder(), path)
    assert cli.main(["convert", str(path), "--to", "onnx", "-o", str(tmp_path / "o.onnx"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["check"]["shapes"]) == 2 and d["dims"]["fixed"] == []
    assert {f["label"] for f in d["dims"]["free"]} == {"batch", "sequence"}


def test_each_output_is_held_to_its_own_dtypes_tolerance():
    ref = seeded((64,)).astype(np.float16)
    one_ulp = np.nextafter(ref, np.float16(np.inf), dtype=np.float16)
    c = compare("y", ref, one_ulp)
    assert c.ok and c.tolerance == "fp16" and c.rtol == 5e-3
    assert not compare("y", ref.astype(np.float32), one_ulp.astype(np.float32)).ok  # fp32 rule
    assert not compare("y", ref, ref + np.float16(0.1)).ok
    assert compare("i", np.arange(3), np.arange(3)).tolerance == "exact"


def test_a_half_precision_model_verifies_at_fp16_tolerance():
    w = onnx.numpy_helper.from_array(seeded((16, 16)).astype(np.float16), "w")
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 16])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 16])], [w])

    def float32_then_round(feeds):  # a correct computation with other rounding than onnxruntime's
        x = feeds["x"].astype(np.float32)
        return {"y": (x @ seeded((16, 16)).astype(np.float16).astype(np.float32)).astype(np.float16)}

    rep = verify_against(reference_run(model), Runner(["x"], ["y"], float32_then_round))
    assert rep.ok and rep.tolerance == "fp16", str(rep)
    assert "fp16" in str(rep) or "5e-3" in str(rep)


def test_a_graph_onnxruntime_cannot_load_is_said_once_not_searched_for_sizes():
    """A TorchScript fp16 export of BERT feeds LayerNormalization float16 data with a float32
    scale: no size can help, and the error says so instead of trying them all."""
    scale = helper.make_tensor("scale", TensorProto.FLOAT, (4,), [1.0, 2.0, 3.0, 4.0])
    model = _model([helper.make_node("LayerNormalization", ["x", "scale"], ["y"], axis=-1)],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", "sequence", 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)], [scale])
    with pytest.raises(InputError) as e:
        reference_run(model)
    assert "cannot load the graph" in e.value.message and "LayerNormalization" in e.value.message


def test_a_none_in_a_given_shape_keeps_that_dim_free(tmp_path):
    model = _encoder()
    fixed = irbridge.load(model, inputs={"ids": (None, 16), "mask": (None, 16)})
    assert [getattr(d, "value", d) for d in fixed.graph.inputs[0].shape] == ["batch", 16]
    from irbridge import dims

    summary = dims.summary(fixed)
    assert {(f["input"], f["axis"]) for f in summary["fixed"]} == {("ids", 1), ("mask", 1)}
    assert {(f["input"], f["axis"]) for f in summary["free"]} == {("ids", 0), ("mask", 0)}
    rep = verify(model, model, inputs={"ids": (None, 16), "mask": (None, 16)})
    assert [s["ids"] for s in rep.shapes] == [(2, 16), (3, 16)]


def test_a_time_major_input_runs_its_sequence_at_lengths_of_8_or_more():
    """(sequence, batch, feature), as a TorchScript RNN export names it: axis 0 is no batch."""
    model = _model([helper.make_node("Relu", ["x"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["sequence", "batch", 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    runs = [f["x"].shape for f, _ in reference_run(model).runs]
    assert [r[1] for r in runs] == [2, 3] and min(r[0] for r in runs) >= 8 and runs[0][0] != runs[1][0]


def test_sizes_that_leave_an_empty_output_are_not_taken():
    """onnxruntime 'runs' four 3x3 pools over an 8x8 map to an empty one; a real size must be
    found (DenseNet121 with free image sides was checked at 8x8, and PyTorch rightly refused)."""
    pools = [helper.make_node("MaxPool", [a], [b], kernel_shape=[3, 3])
             for a, b in [("x", "p1"), ("p1", "p2"), ("p2", "p3"), ("p3", "z")]]
    model = _model(pools,
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, "h", "w"])],
                   [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    ref = reference_run(model)
    assert all(out["z"].size for _, out in ref.runs)
    assert min(f["x"].shape[2] for f, _ in ref.runs) >= 9


def test_sizes_where_the_reference_gives_nan_are_passed_over():
    """A graph whose output is NaN below some size (here sqrt(H - 10); DenseNet121 with free sides
    averages an empty map at small images): the check moves on to sizes that give numbers, as a
    comparison of NaN with NaN says nothing."""
    from onnx import numpy_helper

    nodes = [helper.make_node("Shape", ["x"], ["s"], start=2, end=3),
             helper.make_node("Cast", ["s"], ["h"], to=TensorProto.FLOAT),
             helper.make_node("Sub", ["h", "ten"], ["d"]),
             helper.make_node("Sqrt", ["d"], ["r"]),
             helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
             helper.make_node("Add", ["m", "r"], ["y"])]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array([10.0], np.float32), "ten")]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    ref = reference_run(irbridge.load(model))
    sides = [feeds["x"].shape[2] for feeds, _ in ref.runs]
    assert len(sides) == 2 and min(sides) >= 10, sides
    assert all(np.isfinite(out["y"]).all() for _, out in ref.runs)
