"""cancel-transposes: random chains of layout-agnostic ops between a Transpose and its inverse;
onnxruntime before and after, no Transpose left; the Flatten->Dense row permutation (seed 002)."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import irbridge
from irbridge import passes
from tests.conftest import assert_close, make_model, ort_run

F = TensorProto.FLOAT
PERMS = [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)]
STEPS = ["Relu", "Sigmoid", "AddConstChannel", "MulConstFull", "MulScalar", "AddTransposed",
         "Concat", "Softmax", "ReduceMeanKeep", "Pad", "Clip"]


@st.composite
def chains(draw):
    return dict(perm=draw(st.sampled_from(PERMS)),
                shape=draw(st.lists(st.integers(1, 4), min_size=4, max_size=4)),
                steps=draw(st.lists(st.sampled_from(STEPS), min_size=0, max_size=5)),
                seed=draw(st.integers(0, 2**16)))


def chain_model(c):
    """x -> Transpose(perm) -> steps (in the transposed layout) -> Transpose(inverse) -> y."""
    rng = np.random.default_rng(c["seed"])
    perm, shape = list(c["perm"]), c["shape"]
    tshape = [shape[p] for p in perm]
    inverse = list(np.argsort(perm))
    nodes = [helper.make_node("Transpose", ["x"], ["t0"], perm=perm)]
    inits, inputs, feeds = [], [helper.make_tensor_value_info("x", F, shape)], {}
    feeds["x"] = rng.standard_normal(shape).astype(np.float32)
    cur = "t0"
    for i, step in enumerate(c["steps"]):
        out = f"s{i}"
        if step in ("Relu", "Sigmoid"):
            nodes.append(helper.make_node(step, [cur], [out]))
        elif step == "Clip":
            inits += [numpy_helper.from_array(np.array(-0.5, np.float32), f"lo{i}"),
                      numpy_helper.from_array(np.array(0.5, np.float32), f"hi{i}")]
            nodes.append(helper.make_node("Clip", [cur, f"lo{i}", f"hi{i}"], [out]))
        elif step == "AddConstChannel":  # a bias over the last (NHWC channel) axis
            inits.append(numpy_helper.from_array(rng.standard_normal(tshape[-1]).astype(np.float32), f"c{i}"))
            nodes.append(helper.make_node("Add", [cur, f"c{i}"], [out]))
        elif step == "MulConstFull":
            inits.append(numpy_helper.from_array(rng.standard_normal(tshape[1:]).astype(np.float32), f"c{i}"))
            nodes.append(helper.make_node("Mul", [f"c{i}", cur], [out]))
        elif step == "MulScalar":
            inits.append(numpy_helper.from_array(np.array(1.5, np.float32), f"c{i}"))
            nodes.append(helper.make_node("Mul", [cur, f"c{i}"], [out]))
        elif step == "AddTransposed":  # another input in the same layout
            inputs.append(helper.make_tensor_value_info(f"z{i}", F, shape))
            feeds[f"z{i}"] = rng.standard_normal(shape).astype(np.float32)
            nodes += [helper.make_node("Transpose", [f"z{i}"], [f"zt{i}"], perm=perm),
                      helper.make_node("Add", [cur, f"zt{i}"], [out])]
        elif step == "Concat":
            axis = int(rng.integers(0, 4))
            inputs.append(helper.make_tensor_value_info(f"z{i}", F, shape))
            feeds[f"z{i}"] = rng.standard_normal(shape).astype(np.float32)
            nodes += [helper.make_node("Transpose", [f"z{i}"], [f"zt{i}"], perm=perm),
                      helper.make_node("Concat", [cur, f"zt{i}"], [out], axis=axis)]
            shape = list(shape)
            shape[perm[axis]] *= 2
            tshape = [shape[p] for p in perm]
        elif step == "Softmax":
            nodes.append(helper.make_node("Softmax", [cur], [out], axis=int(rng.integers(-4, 4))))
        elif step == "ReduceMeanKeep":
            axis = int(rng.integers(0, 4))
            inits.append(numpy_helper.from_array(np.array([axis], np.int64), f"ax{i}"))
            nodes.append(helper.make_node("ReduceMean", [cur, f"ax{i}"], [out], keepdims=1))
            shape = list(shape)
            shape[perm[axis]] = 1
            tshape = [shape[p] for p in perm]
        elif step == "Pad":
            pads = rng.integers(0, 2, 8)
            inits.append(numpy_helper.from_array(pads.astype(np.int64), f"p{i}"))
            nodes.append(helper.make_node("Pad", [cur, f"p{i}"], [out]))
            tshape = [d + int(pads[k]) + int(pads[k + 4]) for k, d in enumerate(tshape)]
            shape = [tshape[inverse[k]] for k in range(4)]
        cur = out
    nodes.append(helper.make_node("Transpose", [cur], ["y"], perm=inverse))
    model = make_model(nodes, inputs, [helper.make_tensor_value_info("y", F, None)], inits)
    return irbridge.load(model), feeds


@settings(max_examples=60, deadline=None)
@given(chains())
def test_transposes_cancel_and_outputs_stay(c):
    m, feeds = chain_model(c)
    ref = ort_run(m, feeds)[0]
    passes.run(m, ["cancel-transposes", "remove-unused"])
    assert "Transpose" not in [n.op_type for n in m.graph]
    got = ort_run(m, feeds)[0]
    if set(c["steps"]) <= {"Relu", "Clip", "MulScalar", "AddConstChannel", "AddTransposed", "Concat", "Pad"}:
        np.testing.assert_array_equal(got, ref)  # pure data movement and the same arithmetic
    else:
        assert_close(got, ref)
    assert m.graph.outputs[0].name == "y"
    before = ir.to_proto(m).SerializeToString()
    assert not passes.get("cancel-transposes")(m).modified  # idempotent
    assert ir.to_proto(m).SerializeToString() == before


@settings(max_examples=30, deadline=None)
@given(perm=st.sampled_from([p for p in PERMS if p[0] == 0]),
       shape=st.lists(st.integers(1, 4), min_size=3, max_size=3),
       gemm=st.booleans(), seed=st.integers(0, 2**16))
def test_transpose_before_flatten_moves_into_the_dense_weights(perm, shape, gemm, seed):
    """Seed 002: a Dense after a Flatten needs its rows permuted when the channel order changes."""
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(shape))
    w = rng.standard_normal((n_in, 5)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=list(perm)),
             helper.make_node("Flatten", ["xt"], ["f"], axis=1)]
    if gemm:
        nodes.append(helper.make_node("Gemm", ["f", "w"], ["y"], transB=1))
        w = w.T.copy()
    else:
        nodes.append(helper.make_node("MatMul", ["f", "w"], ["y"]))
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, [2, *shape])],
                       [helper.make_tensor_value_info("y", F, None)], [numpy_helper.from_array(w, "w")])
    feeds = {"x": rng.standard_normal((2, *shape)).astype(np.float32)}
    m = irbridge.load(model)
    ref = ort_run(m, feeds)[0]
    passes.run(m, ["cancel-transposes"])
    assert [n.op_type for n in m.graph] == ["Flatten", "Gemm" if gemm else "MatMul"]
    assert_close(ort_run(m, feeds)[0], ref)


def test_transposes_stop_at_channels_first_ops():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("MaxPool", ["t"], ["y"], kernel_shape=[2, 2])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", F, [1, 4, 4, 3])],
                       [helper.make_tensor_value_info("y", F, None)])
    m = irbridge.load(model)
    assert not passes.get("cancel-transposes")(m).modified
    feeds = {"x": rng.standard_normal((1, 4, 4, 3)).astype(np.float32)}
    assert ort_run(m, feeds)[0].shape == (1, 3, 3, 3)


def test_a_transpose_read_by_its_inverse_and_another_op_cancels_both_ways():
    """Keras residual blocks without tf2onnx's optimizer: x -> T -> {Add, T^-1 -> Relu}."""
    rng = np.random.default_rng(3)
    nhwc, inverse = [0, 2, 3, 1], [0, 3, 1, 2]
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=nhwc),
             helper.make_node("Transpose", ["z"], ["zt"], perm=nhwc),
             helper.make_node("Add", ["t", "zt"], ["a"]),
             helper.make_node("Transpose", ["a"], ["y1"], perm=inverse),
             helper.make_node("Transpose", ["t"], ["back"], perm=inverse),
             helper.make_node("Relu", ["back"], ["y2"])]
    shape = [1, 3, 4, 5]
    model = make_model(nodes, [helper.make_tensor_value_info(n, F, shape) for n in ("x", "z")],
                       [helper.make_tensor_value_info(n, F, None) for n in ("y1", "y2")])
    m = irbridge.load(model)
    feeds = {n: rng.standard_normal(shape).astype(np.float32) for n in ("x", "z")}
    ref = ort_run(m, feeds)
    passes.run(m, ["cancel-transposes", "remove-unused"])
    assert "Transpose" not in [n.op_type for n in m.graph]
    for got, want in zip(ort_run(m, feeds), ref):
        np.testing.assert_array_equal(got, want)


def test_global_pooling_reads_the_untransposed_input():
    """ReduceMean(T(x, NCHW->NHWC), axes=[1, 2], keepdims=0) is ReduceMean(x, axes=[2, 3]); a
    reduction whose kept axes would change order keeps its Transpose."""
    rng = np.random.default_rng(4)
    for axes, transposes_left in (([1, 2], 0), ([1], 1)):
        nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
                 helper.make_node("ReduceMean", ["t", "axes"], ["y"], keepdims=0)]
        model = make_model(nodes, [helper.make_tensor_value_info("x", F, [2, 3, 4, 5])],
                           [helper.make_tensor_value_info("y", F, None)],
                           [numpy_helper.from_array(np.array(axes, np.int64), "axes")])
        m = irbridge.load(model)
        feeds = {"x": rng.standard_normal((2, 3, 4, 5)).astype(np.float32)}
        ref = ort_run(m, feeds)[0]
        passes.run(m, ["cancel-transposes", "remove-unused"])
        assert [n.op_type for n in m.graph].count("Transpose") == transposes_left
        assert_close(ort_run(m, feeds)[0], ref)
