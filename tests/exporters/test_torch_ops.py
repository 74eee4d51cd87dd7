"""One row per op (and per attribute variant that takes a different code path): a one-node
ONNX model, seeded random inputs, exported to PyTorch and compared with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import make_model, ort_run
from tests.exporters.torch_op_rows import export_matches

F = TensorProto.FLOAT
rng = np.random.default_rng(42)


def w(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def i64(*vals):
    return np.array(vals, dtype=np.int64)


# (id, op, attrs, input shapes (None: the next constant), constants {input index: array})
ROWS = [
    ("conv", "Conv", {"pads": [1, 1, 1, 1]}, [(1, 3, 8, 8)], {1: w(4, 3, 3, 3), 2: w(4)}),
    ("conv_asym_pads", "Conv", {"pads": [0, 1, 2, 1], "strides": [2, 2]}, [(1, 3, 9, 9)], {1: w(4, 3, 3, 3)}),
    ("conv_same_upper", "Conv", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, [(1, 2, 7, 8)], {1: w(3, 2, 4, 4)}),
    ("conv_same_lower", "Conv", {"auto_pad": "SAME_LOWER"}, [(1, 2, 7, 8)], {1: w(3, 2, 2, 2)}),
    ("conv_group_dilation", "Conv", {"group": 2, "dilations": [2, 2]}, [(1, 4, 9, 9)], {1: w(6, 2, 3, 3), 2: w(6)}),
    ("conv_depthwise", "Conv", {"group": 4, "pads": [1, 1, 1, 1]}, [(1, 4, 6, 6)], {1: w(4, 1, 3, 3)}),
    ("conv1d", "Conv", {"strides": [2]}, [(1, 3, 10)], {1: w(4, 3, 3)}),
    ("conv3d", "Conv", {"pads": [1] * 6}, [(1, 2, 4, 5, 6)], {1: w(3, 2, 3, 3, 3)}),
    ("conv_transpose", "ConvTranspose", {"strides": [2, 2], "pads": [1, 1, 1, 1]}, [(1, 3, 5, 5)], {1: w(3, 4, 3, 3), 2: w(4)}),
    ("conv_transpose_outpad", "ConvTranspose", {"strides": [2, 2], "output_padding": [1, 1]}, [(1, 3, 4, 4)], {1: w(3, 2, 3, 3)}),
    ("conv_transpose_asym", "ConvTranspose", {"strides": [2, 2], "pads": [0, 1, 1, 0]}, [(1, 2, 4, 4)], {1: w(2, 3, 3, 3)}),
    ("conv_transpose_output_shape", "ConvTranspose", {"strides": [2, 2], "output_shape": [9, 10]}, [(1, 2, 4, 5)], {1: w(2, 3, 3, 3)}),
    ("gemm_linear", "Gemm", {"transB": 1}, [(2, 5)], {1: w(3, 5), 2: w(3)}),
    ("gemm_no_trans", "Gemm", {}, [(2, 5)], {1: w(5, 3), 2: w(3)}),
    ("gemm_general", "Gemm", {"alpha": 0.5, "beta": 2.0, "transA": 1}, [(5, 2), (5, 3)], {2: w(2, 3)}),
    ("matmul_const", "MatMul", {}, [(2, 4, 5)], {1: w(5, 3)}),
    ("matmul", "MatMul", {}, [(2, 4, 5), (2, 5, 3)], {}),
    ("batchnorm", "BatchNormalization", {"epsilon": 1e-3}, [(2, 3, 4, 4)],
     {1: w(3), 2: w(3), 3: w(3), 4: np.abs(w(3)) + 0.5}),
    ("instancenorm", "InstanceNormalization", {}, [(2, 3, 4, 4)], {1: w(3), 2: w(3)}),
    ("layernorm", "LayerNormalization", {"axis": -1}, [(2, 3, 6)], {1: w(6), 2: w(6)}),
    ("lrn_odd", "LRN", {"size": 5, "alpha": 1e-2, "beta": 0.75, "bias": 2.0}, [(1, 7, 3, 3)], {}),
    ("lrn_even", "LRN", {"size": 4, "alpha": 1e-2}, [(1, 7, 3, 3)], {}),
    ("maxpool", "MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}, [(1, 2, 9, 9)], {}),
    ("maxpool_ceil", "MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, [(1, 2, 10, 10)], {}),
    ("maxpool_pads", "MaxPool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}, [(1, 2, 8, 8)], {}),
    ("maxpool_asym", "MaxPool", {"kernel_shape": [2, 2], "pads": [0, 0, 1, 1], "strides": [2, 2]}, [(1, 2, 7, 7)], {}),
    ("maxpool_same", "MaxPool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}, [(1, 2, 8, 7)], {}),
    ("avgpool", "AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, [(1, 2, 8, 8)], {}),
    ("avgpool_pads_incl", "AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, [(1, 2, 6, 6)], {}),
    ("avgpool_pads_excl", "AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, [(1, 2, 6, 6)], {}),
    ("avgpool_asym_excl", "AveragePool", {"kernel_shape": [3, 3], "pads": [0, 1, 2, 1], "strides": [2, 2]}, [(1, 2, 7, 7)], {}),
    ("avgpool_ceil", "AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, [(1, 2, 8, 8)], {}),
    ("global_avgpool", "GlobalAveragePool", {}, [(1, 3, 5, 6)], {}),
    ("global_maxpool", "GlobalMaxPool", {}, [(1, 3, 5, 6)], {}),
    ("relu", "Relu", {}, [(2, 3, 4)], {}),
    ("leaky_relu", "LeakyRelu", {"alpha": 0.2}, [(2, 3, 4)], {}),
    ("prelu_channel", "PRelu", {}, [(1, 3, 4, 4)], {1: w(3, 1, 1)}),
    ("prelu_broadcast", "PRelu", {}, [(1, 3, 4, 4)], {1: w(4)}),
    ("sigmoid", "Sigmoid", {}, [(2, 5)], {}),
    ("tanh", "Tanh", {}, [(2, 5)], {}),
    ("elu", "Elu", {"alpha": 0.7}, [(2, 5)], {}),
    ("selu", "Selu", {}, [(2, 5)], {}),
    ("softplus", "Softplus", {}, [(2, 5)], {}),
    ("softsign", "Softsign", {}, [(2, 5)], {}),
    ("hardsigmoid", "HardSigmoid", {"alpha": 0.3}, [(2, 5)], {}),
    ("hardswish", "HardSwish", {}, [(2, 5)], {}),
    ("gelu", "Gelu", {}, [(2, 5)], {}),
    ("clip_relu6", "Clip", {}, [(2, 5)], {1: np.array(0, np.float32), 2: np.array(6, np.float32)}),
    ("clip", "Clip", {}, [(2, 5)], {1: np.array(-0.5, np.float32), 2: np.array(0.5, np.float32)}),
    ("softmax", "Softmax", {"axis": 1}, [(2, 5, 3)], {}),
    ("logsoftmax", "LogSoftmax", {}, [(2, 5)], {}),
    ("add_broadcast", "Add", {}, [(2, 3, 4), (3, 1)], {}),
    ("sub_const", "Sub", {}, [(2, 3)], {1: w(3)}),
    ("mul_scalar", "Mul", {}, [(2, 3)], {1: np.array(0.5, np.float32)}),
    ("div", "Div", {}, [(2, 3), (2, 3)], {}),
    ("pow", "Pow", {}, [(2, 3)], {1: np.array(3.0, np.float32)}),
    ("sqrt", "Sqrt", {}, [(2, 3)], {}),
    ("exp", "Exp", {}, [(2, 3)], {}),
    ("abs", "Abs", {}, [(2, 3)], {}),
    ("sum3", "Sum", {}, [(2, 3), (2, 3), (3,)], {}),
    ("max2", "Max", {}, [(2, 3), (2, 3)], {}),
    ("mean2", "Mean", {}, [(2, 3), (2, 3)], {}),
    ("where", "Where", {}, [None, (2, 3), (2, 3)], {0: rng.random((2, 3)) < 0.5}),
    ("reshape", "Reshape", {}, [(2, 3, 4)], {1: i64(0, -1)}),
    ("flatten", "Flatten", {"axis": 1}, [(2, 3, 4)], {}),
    ("flatten_axis2", "Flatten", {"axis": 2}, [(2, 3, 4, 5)], {}),
    ("transpose", "Transpose", {"perm": [0, 2, 3, 1]}, [(1, 2, 3, 4)], {}),
    ("concat", "Concat", {"axis": 1}, [(1, 2, 3), (1, 4, 3)], {}),
    ("split", "Split", {"axis": 1, "num_outputs": 2}, [(2, 5)], {}),
    ("split_sizes", "Split", {"axis": 1}, [(2, 6)], {1: i64(1, 5)}),
    ("squeeze", "Squeeze", {}, [(1, 3, 1, 4)], {1: i64(0, 2)}),
    ("unsqueeze", "Unsqueeze", {}, [(3, 4)], {1: i64(0, -1)}),
    ("slice", "Slice", {}, [(4, 6)], {1: i64(1, 0), 2: i64(3, 5), 3: i64(0, 1), 4: i64(1, 2)}),
    ("slice_negative_step", "Slice", {}, [(4, 6)], {1: i64(-1), 2: i64(-1000), 3: i64(1), 4: i64(-2)}),
    ("gather", "Gather", {"axis": 1}, [(3, 5)], {1: i64(0, 4, -1)}),
    ("gather_scalar", "Gather", {"axis": 0}, [(3, 5)], {1: np.array(2, np.int64)}),
    ("pad_reflect", "Pad", {"mode": "reflect"}, [(1, 2, 4, 5)], {1: i64(0, 0, 1, 2, 0, 0, 2, 1)}),
    ("pad_constant", "Pad", {}, [(1, 2, 4, 5)], {1: i64(0, 1, 1, 0, 0, 0, 2, 1), 2: np.array(0.5, np.float32)}),
    ("pad_edge", "Pad", {"mode": "edge"}, [(2, 4, 5)], {1: i64(0, 1, 2, 0, 1, 0)}),
    ("expand", "Expand", {}, [(3, 1)], {1: i64(2, 3, 4)}),
    ("tile", "Tile", {}, [(2, 3)], {1: i64(2, 1)}),
    ("reduce_mean", "ReduceMean", {"keepdims": 1}, [(2, 3, 4)], {1: i64(1, 2)}),
    ("reduce_sum_all", "ReduceSum", {"keepdims": 0}, [(2, 3, 4)], {}),
    ("reduce_max", "ReduceMax", {"keepdims": 0}, [(2, 3, 4)], {1: i64(-1)}),
    ("reduce_l2", "ReduceL2", {}, [(2, 3, 4)], {1: i64(1)}),
    ("reduce_mean_spatial", "ReduceMean", {"keepdims": 1}, [(2, 3, 4, 5)], {1: i64(2, 3)}),
    ("argmax", "ArgMax", {"axis": 1, "keepdims": 0}, [(2, 5, 3)], {}),
    ("topk", "TopK", {"axis": 1}, [(2, 7, 3)], {1: i64(3)}),
    ("depth_to_space", "DepthToSpace", {"blocksize": 2, "mode": "DCR"}, [(1, 8, 2, 3)], {}),
    ("depth_to_space_crd", "DepthToSpace", {"blocksize": 2, "mode": "CRD"}, [(1, 8, 2, 3)], {}),
    ("space_to_depth", "SpaceToDepth", {"blocksize": 2}, [(1, 2, 4, 6)], {}),
    ("dropout", "Dropout", {}, [(2, 3)], {}),
    ("cast", "Cast", {"to": TensorProto.INT32}, [(2, 3)], {}),
    ("einsum", "Einsum", {"equation": "bij,bjk->bik"}, [(2, 3, 4), (2, 4, 5)], {}),
]


def _model(op, attrs, shapes, consts):
    n_inputs = max(len(shapes), max(consts, default=-1) + 1)
    names, inputs, inits, feeds = [], [], [], {}
    for i in range(n_inputs):
        name = f"in{i}"
        names.append(name)
        if i in consts:
            inits.append(numpy_helper.from_array(np.asarray(consts[i]), name))
        else:
            x = np.random.default_rng(i).standard_normal(shapes[i]).astype(np.float32)
            feeds[name] = x
            inputs.append(helper.make_tensor_value_info(name, F, shapes[i]))
    n_out = 2 if op in ("Split", "TopK") else 1
    outs = [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, **attrs)
    model = make_model([node], inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits,
                       opset=OPSET.get(op, 18))
    model = onnx.shape_inference.infer_shapes(model)
    return model, feeds


def numpy_lrn(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    """LRN from the ONNX definition: the window over channels is
    [c - floor((size-1)/2), c + ceil((size-1)/2)]."""
    sq = np.zeros_like(x)
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    for c in range(x.shape[1]):
        sq[:, c] = (x[:, max(0, c - lo): c + hi + 1] ** 2).sum(axis=1)
    return x / (bias + alpha / size * sq) ** beta


# onnxruntime refuses these variants (even LRN sizes), and onnx's reference evaluator gets
# LRN wrong (it loops over the batch, not the channels): numpy from the definition instead.
NUMPY_REFERENCE = {"lrn_even": lambda f: [numpy_lrn(f["in0"], size=4, alpha=1e-2)]}

# ops whose current definition is newer than opset 18
OPSET = {"Gelu": 20}


def reference(row_id, model, feeds):
    if row_id in NUMPY_REFERENCE:
        return NUMPY_REFERENCE[row_id](feeds)
    return ort_run(model, feeds)


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_op_matches_onnxruntime(row, torch):

    _id, op, attrs, shapes, consts = row
    model, feeds = _model(op, attrs, shapes, consts)
    export_matches(model, feeds, reference(_id, model, feeds), torch)


def test_every_row_op_is_registered():
    from irbridge.exporters.torch.registry import supported

    assert {r[1] for r in ROWS} <= set(supported())
