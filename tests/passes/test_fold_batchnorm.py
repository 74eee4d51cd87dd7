"""fold-batchnorm keeps the outputs and leaves no BatchNormalization after a Conv/Gemm."""

from __future__ import annotations

import numpy as np
import pytest
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
