"""fold-batchnorm keeps the outputs and leaves no BatchNormalization after a Conv/Gemm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irbridge.models import onnx_zoo
from onnx import TensorProto, helper, numpy_helper

import irbridge
from irbridge import passes
from tests.conftest import assert_close, make_model, ort_run, seeded


@pytest.mark.parametrize("name", ["resnet50", "inception_v2"])
def test_zoo_batchnorms_fold_into_convs(name):
    model = onnx_zoo.light_model(name, seed=4)
    feeds = {model.graph.input[0].name: seeded((1, 3, 224, 224), seed=5)}
    m = irbridge.normalize(irbridge.load(model))
    ref = ort_run(m, feeds)[0]
    n_bn = sum(n.op_type == "BatchNormalization" for n in m.graph)
    assert n_bn > 0
    passes.run(m, ["fold-batchnorm", "remove-unused"])
    assert sum(n.op_type == "BatchNormalization" for n in m.graph) == 0
    assert_close(ort_run(m, feeds)[0], ref)


def test_gemm_then_batchnorm_folds_and_shared_outputs_do_not():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "C")]
    for nm in ("g", "b", "m"):
        inits.append(numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), nm))
    inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), "v"))
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["h"], transB=1),
             helper.make_node("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])], inits)
    feeds = {"x": seeded((3, 6))}
    ref = ort_run(model, feeds)[0]
    m = irbridge.load(model)
    passes.run(m, ["fold-batchnorm", "remove-unused"])
    assert [n.op_type for n in m.graph] == ["Gemm"]
    assert_close(ort_run(m, feeds)[0], ref)
    # when the Gemm's output is also a graph output, folding would change it: left alone
    model.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, [3, 4]))
    m = irbridge.load(model)
    passes.run(m, ["fold-batchnorm"])
    assert "BatchNormalization" in [n.op_type for n in m.graph]


@settings(max_examples=30, deadline=None)
@given(followers=st.lists(st.sampled_from(["BatchNormalization", "Mul", "Add", "MulScalar"]),
                          min_size=1, max_size=4),
       bias=st.booleans(), group=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_conv_followed_by_batchnorm_and_caffe_scale_folds(followers, bias, group, seed):
    """Caffe's BatchNorm + Scale pair imports as BatchNormalization -> Mul -> Add."""
    rng = np.random.default_rng(seed)
    c = 4
    inits = [numpy_helper.from_array(rng.standard_normal((c, 4 // group, 3, 3)).astype(np.float32), "W")]
    conv_in = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "B"))
        conv_in.append("B")
    nodes = [helper.make_node("Conv", conv_in, ["h0"], group=group, pads=[1, 1, 1, 1])]
    for i, f in enumerate(followers):
        src, out = f"h{i}", f"h{i + 1}"
        if f == "BatchNormalization":
            names = [f"{n}{i}" for n in ("g", "b", "m", "v")]
            for n in names[:3]:
                inits.append(numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), n))
            inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), names[3]))
            nodes.append(helper.make_node(f, [src, *names], [out], epsilon=1e-3))
        else:
            shape = () if f == "MulScalar" else (c, 1, 1)
            inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), f"k{i}"))
            nodes.append(helper.make_node("Mul" if f == "MulScalar" else f, [f"k{i}", src], [out]))
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 5, 5])],
                       [helper.make_tensor_value_info(f"h{len(followers)}", TensorProto.FLOAT, None)], inits)
    feeds = {"x": seeded((2, 4, 5, 5), seed=seed)}
    m = irbridge.load(model)
    ref = ort_run(m, feeds)[0]
    passes.run(m, ["fold-batchnorm", "remove-unused"])
    assert [n.op_type for n in m.graph] == ["Conv"]
    assert_close(ort_run(m, feeds)[0], ref)
    assert not passes.get("fold-batchnorm")(m).modified


def test_a_spatially_varying_mul_is_not_folded():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 4, 1, 1)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((4, 5, 5)).astype(np.float32), "k")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["h"]), helper.make_node("Mul", ["h", "k"], ["y"])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = irbridge.load(model)
    assert not passes.get("fold-batchnorm")(m).modified
