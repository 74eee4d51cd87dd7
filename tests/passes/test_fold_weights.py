"""fold-weight-layout and fold-kernel-flip: property tests over kernel shapes, layouts, strides,
groups and paddings; outputs before and after are compared in onnxruntime."""

from __future__ import annotations

import itertools

import numpy as np
import onnx_ir as ir
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import irbridge
from irbridge import passes
from tests.conftest import make_model, ort_run

LAYOUTS = ["".join(p) for p in itertools.permutations("OIHW")]


@st.composite
def conv_cases(draw):
    group = draw(st.sampled_from([1, 2]))
    cin = group * draw(st.integers(1, 3))
    cout = group * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.integers(1, 2))
    pads = draw(st.lists(st.integers(0, 2), min_size=4, max_size=4))
    layout = draw(st.sampled_from(LAYOUTS))
    flip = draw(st.booleans())
    dtype = np.float32  # onnxruntime has float32 Conv kernels only on CPU
    seed = draw(st.integers(0, 2**16))
    return dict(group=group, cin=cin, cout=cout, k=(kh, kw), stride=stride, pads=pads,
                layout=layout, flip=flip, dtype=dtype, seed=seed)


def conv_with_stored_kernel(c):
    """A Conv whose kernel is stored in `layout` (optionally flipped) and reaches the Conv
    through a Transpose (and a flip Slice): what a literal importer writes."""
    rng = np.random.default_rng(c["seed"])
    oihw = rng.standard_normal((c["cout"], c["cin"] // c["group"], *c["k"])).astype(c["dtype"])
    stored = oihw.transpose(["OIHW".index(ch) for ch in c["layout"]])  # the file's layout
    if c["flip"]:
        stored = np.flip(stored, [c["layout"].index("H"), c["layout"].index("W")])
    w = numpy_helper.from_array(np.ascontiguousarray(stored), "kernel")
    nodes, src = [], "kernel"
    if c["flip"]:
        axes = [c["layout"].index("H"), c["layout"].index("W")]
        inits = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
                 (("st", [-1, -1]), ("en", [-(2**62)] * 2), ("ax", axes), ("sp", [-1, -1]))]
        nodes.append(helper.make_node("Slice", ["kernel", "st", "en", "ax", "sp"], ["flipped"]))
        src = "flipped"
    else:
        inits = []
    perm = [c["layout"].index(ch) for ch in "OIHW"]
    nodes.append(helper.make_node("Transpose", [src], ["w_oihw"], perm=perm))
    nodes.append(helper.make_node("Conv", ["x", "w_oihw"], ["y"], group=c["group"], pads=c["pads"],
                                  strides=[c["stride"]] * 2))
    elem = TensorProto.FLOAT if c["dtype"] == np.float32 else TensorProto.DOUBLE
    model = make_model(nodes, [helper.make_tensor_value_info("x", elem, [1, c["cin"], 7, 6])],
                       [helper.make_tensor_value_info("y", elem, None)], [w] + inits)
    m = irbridge.load(model)
    m.graph.initializers["kernel"].metadata_props["irbridge.layout"] = c["layout"] + ("+flip" if c["flip"] else "")
    feeds = {"x": rng.standard_normal((1, c["cin"], 7, 6)).astype(c["dtype"])}
    return m, feeds, oihw


@settings(max_examples=40, deadline=None)
@given(conv_cases())
def test_folding_keeps_outputs_and_leaves_canonical_weights(c):
    m, feeds, oihw = conv_with_stored_kernel(c)
    before = ort_run(m, feeds)[0]
    passes.run(m, ["fold-weight-layout", "fold-kernel-flip", "fold-weight-layout"])
    assert [n.op_type for n in m.graph] == ["Conv"]
    w = m.graph.initializers["kernel"]  # the user's name is kept
    np.testing.assert_array_equal(w.const_value.numpy(), oihw)
    assert "irbridge.layout" not in w.metadata_props
    np.testing.assert_array_equal(ort_run(m, feeds)[0], before)  # a pure permutation: exact


@settings(max_examples=10, deadline=None)
@given(conv_cases())
def test_folding_is_idempotent(c):
    m, _, _ = conv_with_stored_kernel(c)
    passes.run(m, ["fold-weight-layout", "fold-kernel-flip", "fold-weight-layout"])
    before = ir.to_proto(m).SerializeToString()
    for name in ("fold-weight-layout", "fold-kernel-flip"):
        assert not passes.get(name)(m).modified
    assert ir.to_proto(m).SerializeToString() == before


def test_a_shared_initializer_is_copied_not_rewritten():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((2, 2, 2, 2)).astype(np.float32), "k")
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[3, 2, 0, 1]),
             helper.make_node("Conv", ["x", "kt"], ["a"]),
             helper.make_node("Conv", ["x", "k"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    feeds = {"x": rng.standard_normal((1, 2, 5, 5)).astype(np.float32)}
    m = irbridge.load(model)
    before = ort_run(m, feeds)[0]
    passes.run(m, ["fold-weight-layout"])
    assert "Transpose" not in [n.op_type for n in m.graph]
    assert sorted(m.graph.initializers) == ["k", "k_transpose"]
    np.testing.assert_array_equal(ort_run(m, feeds)[0], before)


def test_activation_transposes_are_not_touched():
    nodes = [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = irbridge.load(model)
    assert not passes.get("fold-weight-layout")(m).modified
