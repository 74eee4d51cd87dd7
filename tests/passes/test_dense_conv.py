"""dense-to-conv and conv-to-dense: property tests (onnxruntime before/after), round trips,
idempotence, and seed 004 (a Dense on an NHWC tensor is a 1x1 convolution)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import irbridge
from irbridge import passes
from tests.conftest import assert_close, make_model, ort_run

F = TensorProto.FLOAT


@st.composite
def fc_heads(draw):
    return dict(
        c=draw(st.integers(1, 4)), h=draw(st.integers(1, 4)), w=draw(st.integers(1, 4)),
        k=draw(st.integers(1, 5)), k2=draw(st.integers(1, 4)),
        bias=draw(st.booleans()), flatten=draw(st.sampled_from(["Flatten", "Reshape"])),
        nhwc_flatten=draw(st.booleans()), matmul=draw(st.booleans()),
        act=draw(st.sampled_from(["Relu", "Sigmoid", "Dropout"])), batch=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**16)),
    )


def fc_head(c):
    """x[N,C,H,W] -> (Transpose to NHWC) -> Flatten -> FC(k) -> act -> FC(k2): a classifier head."""
    rng = np.random.default_rng(c["seed"])
    n_in = c["c"] * c["h"] * c["w"]
    inits = [numpy_helper.from_array(np.array([c["batch"], -1], np.int64), "shape")]
    nodes, src = [], "x"
    if c["nhwc_flatten"]:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_nhwc"], perm=[0, 2, 3, 1]))
        src = "x_nhwc"
    if c["flatten"] == "Flatten":
        nodes.append(helper.make_node("Flatten", [src], ["flat"], axis=1))
    else:
        nodes.append(helper.make_node("Reshape", [src, "shape"], ["flat"]))
    w6 = rng.standard_normal((c["k"], n_in)).astype(np.float32)
    b6 = rng.standard_normal(c["k"]).astype(np.float32)
    if c["matmul"]:  # TF style: MatMul by [in, out] then Add
        inits.append(numpy_helper.from_array(w6.T.copy(), "fc6_w"))
        nodes.append(helper.make_node("MatMul", ["flat", "fc6_w"], ["fc6_mm" if c["bias"] else "fc6"]))
        if c["bias"]:
            inits.append(numpy_helper.from_array(b6, "fc6_b"))
            nodes.append(helper.make_node("Add", ["fc6_mm", "fc6_b"], ["fc6"]))
    else:
        inits.append(numpy_helper.from_array(w6, "fc6_w"))
        ins = ["flat", "fc6_w"] + (["fc6_b"] if c["bias"] else [])
        if c["bias"]:
            inits.append(numpy_helper.from_array(b6, "fc6_b"))
        nodes.append(helper.make_node("Gemm", ins, ["fc6"], transB=1))
    nodes.append(helper.make_node(c["act"], ["fc6"], ["a6"]))
    inits += [numpy_helper.from_array(rng.standard_normal((c["k2"], c["k"])).astype(np.float32), "fc7_w"),
              numpy_helper.from_array(rng.standard_normal(c["k2"]).astype(np.float32), "fc7_b")]
    nodes.append(helper.make_node("Gemm", ["a6", "fc7_w", "fc7_b"], ["y"], transB=1))
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, [c["batch"], c["c"], c["h"], c["w"]])],
                       [helper.make_tensor_value_info("y", F, None)], inits)
    feeds = {"x": rng.standard_normal((c["batch"], c["c"], c["h"], c["w"])).astype(np.float32)}
    return irbridge.load(model), feeds


def ops(m):
    return [n.op_type for n in m.graph]


@settings(max_examples=40, deadline=None)
@given(fc_heads())
def test_dense_to_conv_and_back_keep_the_outputs(c):
    m, feeds = fc_head(c)
    ref = ort_run(m, feeds)[0]
    passes.run(m, ["dense-to-conv", "remove-unused"])
    assert ops(m).count("Conv") == 2 and "Gemm" not in ops(m) and "MatMul" not in ops(m)
    assert ops(m)[-1] == "Flatten" and "Transpose" not in ops(m)  # absorbed into the fc6 kernel
    assert_close(ort_run(m, feeds)[0], ref)
    assert not passes.get("dense-to-conv")(m).modified  # idempotent
    passes.run(m, ["conv-to-dense", "remove-unused"])
    assert ops(m).count("Gemm") == 2 and "Conv" not in ops(m)
    assert ops(m).count("Unsqueeze") == 0  # moved past the activation and cancelled by the Flatten
    assert_close(ort_run(m, feeds)[0], ref)
    assert not passes.get("conv-to-dense")(m).modified


def test_conv_to_dense_leaves_ordinary_convs_alone():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                       [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])],
                       [helper.make_tensor_value_info("y", F, None)], [w])
    m = irbridge.normalize(irbridge.load(model))
    before = ir.to_proto(m).SerializeToString()
    assert not passes.get("conv-to-dense")(m).modified
    assert ir.to_proto(m).SerializeToString() == before


def test_seed_004_dense_on_nhwc_is_a_1x1_convolution():
    """Seed 004: tf.layers.dense on a (1,2,2,1) NHWC tensor == tf.layers.conv2d(kernel 1, stride 1)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 2, 1)).astype(np.float32)
    kernel = rng.standard_normal((1, 6)).astype(np.float32)  # Dense kernel [in, out]
    bias = rng.standard_normal(6).astype(np.float32)
    dense = make_model(
        [helper.make_node("MatMul", ["x", "k"], ["xk"]), helper.make_node("Add", ["xk", "b"], ["y"])],
        [helper.make_tensor_value_info("x", F, [1, 2, 2, 1])], [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(kernel, "k"), numpy_helper.from_array(bias, "b")])
    # the seed's 1x1 conv, written in ONNX: HWIO kernel [1,1,1,6] -> OIHW, NHWC around it
    conv = make_model(
        [helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2]),
         helper.make_node("Conv", ["xc", "w", "b"], ["yc"], kernel_shape=[1, 1], strides=[1, 1]),
         helper.make_node("Transpose", ["yc"], ["y"], perm=[0, 2, 3, 1])],
        [helper.make_tensor_value_info("x", F, [1, 2, 2, 1])], [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(kernel.reshape(1, 1, 1, 6).transpose(3, 2, 0, 1).copy(), "w"),
         numpy_helper.from_array(bias, "b")])
    feeds = {"x": x}
    y_dense, y_conv = ort_run(dense, feeds)[0], ort_run(conv, feeds)[0]
    assert_close(y_conv, y_dense)
    assert_close(y_dense, np.einsum("nhwc,ck->nhwk", x, kernel) + bias)  # numpy, from the definition
    m = irbridge.load(dense)
    passes.run(m, ["dense-to-conv", "remove-unused"])
    assert ops(m) == ["Transpose", "Conv", "Transpose"]
    assert_close(ort_run(m, feeds)[0], y_dense)
    assert m.graph.outputs[0].name == "y"
