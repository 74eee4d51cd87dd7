"""Seed 000: a vgg16.npy-style dict (HWIO kernels, fc6 25088x4096 in NHWC flatten order) drives
a dense VGG16; irbridge turns it into a fully convolutional network (fc6 a 7x7 conv, fc7/fc8
1x1 convs) whose output at 224x224 equals the dense network's."""

from __future__ import annotations

import numpy as np
import pytest
from irbridge.models.vgg16_npy import mark_layouts, vgg16_graph, vgg16_weights

import irbridge
from irbridge import passes
from tests.conftest import assert_close, ort_run


@pytest.mark.slow
def test_vgg16_npy_becomes_a_fully_convolutional_network():
    weights = vgg16_weights(seed=0)  # the real sizes: fc6 is 25088 x 4096
    assert weights["fc6"][0].shape == (25088, 4096)
    dense = vgg16_graph(weights)
    feeds = {"images": np.random.default_rng(1).standard_normal((1, 224, 224, 3)).astype(np.float32)}
    ref = ort_run(dense, feeds)[0]

    m = irbridge.load(dense)
    mark_layouts(m)
    m = irbridge.normalize(m)  # HWIO kernels folded to OIHW, marks removed
    assert not any("irbridge.layout" in v.metadata_props for v in m.graph.initializers.values())
    passes.run(m, ["dense-to-conv", "remove-unused"])

    convs = {n.name: n for n in m.graph if n.op_type == "Conv"}
    assert list(convs["fc6/matmul"].inputs[1].shape) == [4096, 512, 7, 7]
    assert list(convs["fc7/matmul"].inputs[1].shape) == [4096, 4096, 1, 1]
    assert list(convs["fc8/matmul"].inputs[1].shape) == [1000, 4096, 1, 1]
    assert not [n for n in m.graph if n.op_type in ("MatMul", "Gemm", "Transpose")][1:]  # only the input's
    assert_close(ort_run(m, feeds)[0], ref)
