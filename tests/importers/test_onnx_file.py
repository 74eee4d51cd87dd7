"""The .onnx reader maps large inline weights instead of parsing (copying) them."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge.errors import InputError
from tests.conftest import assert_close, make_model, ort_run, seeded


def _model(path):
    w = seeded((64, 512), seed=1)  # 128 KB: mapped
    b = seeded((64,), seed=2)  # 256 bytes: parsed
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    m = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 512])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(m, path)
    return m, w


def test_large_weights_are_views_of_the_file(tmp_path):
    import irbridge

    proto, w = _model(tmp_path / "m.onnx")
    m = irbridge.load(tmp_path / "m.onnx")
    big, small = m.graph.initializers["w"].const_value, m.graph.initializers["b"].const_value
    assert isinstance(big, ir.ExternalTensor) and big.location == str((tmp_path / "m.onnx").resolve())
    assert not isinstance(small, ir.ExternalTensor)
    array = big.numpy()
    assert not array.flags.owndata and not array.flags.writeable
    np.testing.assert_array_equal(array, w)
    x = {"x": seeded((2, 512), seed=3)}
    assert_close(ort_run(m, x)[0], ort_run(proto, x)[0])


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_linked_model_files_read_their_own_weights(tmp_path, link):
    import irbridge

    _, w = _model(tmp_path / "real.onnx")
    (tmp_path / "view").mkdir()
    linked = tmp_path / "view" / "m.onnx"
    (os.symlink if link == "symlink" else os.link)(tmp_path / "real.onnx", linked)
    m = irbridge.load(linked)
    np.testing.assert_array_equal(m.graph.initializers["w"].const_value.numpy(), w)


def test_a_weight_shorter_than_its_dims_is_refused(tmp_path):
    import irbridge

    _model(tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    proto.graph.initializer[0].dims[1] = 513
    onnx.save(proto, tmp_path / "bad.onnx")
    with pytest.raises(InputError, match=r"bad.onnx: initializer 'w' declares dims \[64, 513\]"):
        irbridge.load(tmp_path / "bad.onnx")


def test_saving_over_the_source_file_keeps_the_weights(tmp_path):
    import irbridge

    _, w = _model(tmp_path / "m.onnx")
    m = irbridge.load(tmp_path / "m.onnx")
    m.graph.initializers["b"].const_value = ir.Tensor(np.zeros(64, np.float32), name="b")
    irbridge.save(m, tmp_path / "m.onnx")
    np.testing.assert_array_equal(m.graph.initializers["w"].const_value.numpy(), w)
    again = onnx.load(tmp_path / "m.onnx")
    np.testing.assert_array_equal(numpy_helper.to_array(again.graph.initializer[0]), w)
