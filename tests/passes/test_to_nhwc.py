"""to-nhwc: channels-last interfaces, the fewest Transposes ONNX allows, named; verified."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irbridge.models import onnx_zoo
from irbridge.passes.to_nhwc import remaining_transposes
from onnx import TensorProto, helper, numpy_helper

import irbridge
from irbridge import passes
from irbridge.cli import main
from tests.conftest import assert_close, make_model, ort_run, seeded


@pytest.mark.parametrize("name", ["squeezenet", "inception_v1", "resnet50"])
def test_zoo_models_get_nhwc_interfaces_and_keep_their_outputs(name):
    model = onnx_zoo.light_model(name, seed=6)
    x = seeded((1, 3, 224, 224), seed=7)
    ref = ort_run(model, {model.graph.input[0].name: x})
    m = irbridge.normalize(irbridge.load(model), passes.DEFAULT_PIPELINE + ["to-nhwc"])
    assert list(m.graph.inputs[0].shape) == [1, 224, 224, 3]
    got = ort_run(m, {m.graph.inputs[0].name: np.ascontiguousarray(x.transpose(0, 2, 3, 1))})
    for g, r, v in zip(got, ref, m.graph.outputs):
        assert_close(g.transpose(0, 3, 1, 2) if v.metadata_props.get("irbridge.layout") == "NHWC" else g, r)
    left = remaining_transposes(m)
    assert len(left) <= len(m.graph.inputs) + len(m.graph.outputs)  # only at the boundary
    assert all(t["reason"] for t in left)
    assert not passes.get("to-nhwc")(m).modified  # idempotent


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=4, max_size=4), seed=st.integers(0, 2**16),
       ops=st.lists(st.sampled_from(["Relu", "Sigmoid", "Neg"]), min_size=1, max_size=3))
def test_layout_agnostic_graphs_need_no_transpose_at_all(shape, seed, ops):
    bias = np.random.default_rng(seed).standard_normal((shape[1], 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "b"], ["h0"])]
    for i, op in enumerate(ops):
        nodes.append(helper.make_node(op, [f"h{i}"], [f"h{i + 1}"]))
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                       [helper.make_tensor_value_info(f"h{len(ops)}", TensorProto.FLOAT, shape)],
                       [numpy_helper.from_array(bias, "b")])
    m = irbridge.normalize(irbridge.load(model), passes.DEFAULT_PIPELINE + ["to-nhwc"])
    assert remaining_transposes(m) == []
    x = seeded(shape, seed=seed)
    got = ort_run(m, {"x": np.ascontiguousarray(x.transpose(0, 2, 3, 1))})[0]
    np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), ort_run(model, {"x": x})[0])


def test_cli_layout_nhwc_reports_the_remaining_transposes(tmp_path, capsys):
    src = tmp_path / "sq.onnx"
    onnx.save(onnx_zoo.light_model("squeezenet", seed=0), src)
    out = tmp_path / "sq_nhwc.onnx"
    code = main(["convert", str(src), "--to", "onnx", "-o", str(out), "--layout", "nhwc", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and d["check"]["ok"] and d["layout"] == "nhwc"
    assert [t["node"] for t in d["transposes"]] == ["data_0_to_nchw", "softmaxout_1_to_nhwc"]
    saved = onnx.load(out)
    assert [d.dim_value for d in saved.graph.input[0].type.tensor_type.shape.dim] == [1, 224, 224, 3]
    # the file says its interfaces are NHWC, so verify compares it with the original correctly
    code = main(["verify", str(src), str(out), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["ok"]


def test_nhwc_layout_is_for_onnx_output_only():
    with pytest.raises(irbridge.InputError, match="ONNX output"):
        irbridge.convert(onnx_zoo.light_model("squeezenet"), "torch", layout="nhwc")
