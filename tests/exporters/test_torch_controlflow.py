"""If, Loop and Scan as Python control flow in model.py (issue 18).

A TorchScript-scripted module with a data-dependent `if` and a loop over the batch is exported
by torch.onnx (If + Loop nodes), converted, written to model.py, reloaded from disk as a user
would, and compared with onnxruntime and with the source module at batch 2 and 3, both branches
taken. A hand-built Loop (scan output, a value read from the outer scope, an If nested in the
body) checks the rest.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

from tests.conftest import assert_close, make_model, ort_run


def _scripted_gate(torch):
    from torch import nn

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Linear(8, 8)
            self.down = nn.Linear(8, 8)

        def forward(self, x):
            if bool(x.sum() > 0):
                y = self.up(x)
            else:
                y = self.down(x) * 2.0
            h = torch.zeros_like(y[0])
            for i in range(x.size(0)):
                h = torch.tanh(h + y[i])
            return y, h

    torch.manual_seed(0)
    return torch.jit.script(Gate().eval())


def _convert_and_reload(model, tmp_path):
    import irbridge
    from irbridge.exporters.torch import load_saved, save

    gm = irbridge.export(irbridge.normalize(irbridge.load(model)), "torch", check=False)
    save(gm, tmp_path / "out")
    return (tmp_path / "out" / "model.py").read_text(), load_saved(tmp_path / "out")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_scripted_if_and_loop_reload_from_model_py(torch, tmp_path):
    source = _scripted_gate(torch)
    buf = io.BytesIO()
    torch.onnx.export(source, (torch.randn(2, 8),), buf, dynamo=False, input_names=["x"],
                      output_names=["y", "h"], dynamic_axes={"x": {0: "batch"}}, opset_version=17)
    model = onnx.load_from_string(buf.getvalue())
    assert {"If", "Loop"} <= {n.op_type for n in model.graph.node}
    text, reloaded = _convert_and_reload(model, tmp_path)
    assert "if bool(cond):" in text and "while i < int(trip_count) and bool(cond):" in text
    assert "def then_branch(self" in text and "def body(self" in text
    rng = np.random.default_rng(7)
    for batch, sign in ((2, 1.0), (3, -1.0), (3, 1.0), (2, -1.0)):  # both branches, two batch sizes
        x = (np.abs(rng.standard_normal((batch, 8))) * sign).astype(np.float32)
        ref = ort_run(model, {"x": x})
        with torch.no_grad():
            got = reloaded(torch.from_numpy(x))
            src = source(torch.from_numpy(x))
        for g, r, s in zip(got, ref, src):
            assert_close(g.numpy(), r)
            assert_close(g.numpy(), s.detach().numpy())


def _loop_model():
    """Loop over trip_count: h = tanh(h @ W + x[i]) (W read from the outer scope), scan out
    h * 0.5 or -h, chosen by an If from an If nested in the body on i's parity."""
    cond_in = h.make_tensor_value_info("cond_in", T.BOOL, [])
    i = h.make_tensor_value_info("i", T.INT64, [])
    h_in = h.make_tensor_value_info("h_in", T.FLOAT, ["batch", 4])
    then_g = h.make_graph([h.make_node("Mul", ["h_new", "half"], ["pos"])], "then", [],
                          [h.make_tensor_value_info("pos", T.FLOAT, ["batch", 4])])
    else_g = h.make_graph([h.make_node("Neg", ["h_new"], ["neg"])], "else", [],
                          [h.make_tensor_value_info("neg", T.FLOAT, ["batch", 4])])
    body = h.make_graph(
        [h.make_node("MatMul", ["h_in", "W"], ["hw"]),
         h.make_node("Gather", ["xs", "i"], ["x_i"], axis=1),
         h.make_node("Add", ["hw", "x_i"], ["pre"]),
         h.make_node("Tanh", ["pre"], ["h_new"]),
         h.make_node("Mod", ["i", "two"], ["parity"]),
         h.make_node("Equal", ["parity", "zero"], ["even"]),
         h.make_node("If", ["even"], ["signed"], then_branch=then_g, else_branch=else_g),
         h.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [i, cond_in, h_in],
        [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("h_new", T.FLOAT, ["batch", 4]),
         h.make_tensor_value_info("signed", T.FLOAT, ["batch", 4])])
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "W"),
             numpy_helper.from_array(np.array(2, np.int64), "two"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    nodes = [h.make_node("Loop", ["steps", "", "h0"], ["h_final", "trace"], body=body)]
    inputs = [h.make_tensor_value_info("steps", T.INT64, []),
              h.make_tensor_value_info("h0", T.FLOAT, ["batch", 4]),
              h.make_tensor_value_info("xs", T.FLOAT, ["batch", 5, 4])]
    outputs = [h.make_tensor_value_info("h_final", T.FLOAT, ["batch", 4]),
               h.make_tensor_value_info("trace", T.FLOAT, [None, "batch", 4])]
    return make_model(nodes, inputs, outputs, inits, opset=17)


def test_loop_with_scan_output_outer_scope_and_nested_if(torch, tmp_path):
    model = _loop_model()
    onnx.checker.check_model(model)
    text, reloaded = _convert_and_reload(model, tmp_path)
    assert "for i in range(int(trip_count)):" in text and "torch.stack(trace, 0)" in text
    assert text.index("class If") < text.index("class Loop")  # the nested class comes first
    for batch, steps in ((2, 5), (3, 4), (3, 0)):  # no step: the empty trace onnxruntime gives, (0, 0, 4)
        feeds = {"steps": np.array(steps, np.int64), "h0": np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32),
                 "xs": np.random.default_rng(10 + batch).standard_normal((batch, 5, 4)).astype(np.float32)}
        ref = ort_run(model, feeds)
        with torch.no_grad():
            got = reloaded(*[torch.from_numpy(feeds[n]) for n in ("steps", "h0", "xs")])
        assert got[1].shape == ((steps, batch, 4) if steps else (0, 0, 4)) == ref[1].shape
        for g, r in zip(got, ref):
            assert_close(g.numpy(), r)


def test_loop_over_sequences_is_refused_clearly(torch):
    import irbridge
    from irbridge.errors import UnsupportedError

    seq = h.make_tensor_sequence_value_info("s", T.FLOAT, None)
    body = h.make_graph([h.make_node("Identity", ["c"], ["c_out"]), h.make_node("Identity", ["s"], ["s_out"])],
                        "body", [h.make_tensor_value_info("i", T.INT64, []), h.make_tensor_value_info("c", T.BOOL, []), seq],
                        [h.make_tensor_value_info("c_out", T.BOOL, []), h.make_tensor_sequence_value_info("s_out", T.FLOAT, None)])
    nodes = [h.make_node("SequenceEmpty", [], ["s0"]),
             h.make_node("Loop", ["n", ""], [], body=body, name="accumulate")]
    nodes[1].input.append("s0")
    nodes[1].output.append("s_final")
    model = make_model(nodes, [h.make_tensor_value_info("n", T.INT64, [])],
                       [h.make_tensor_sequence_value_info("s_final", T.FLOAT, None)], opset=17)
    with pytest.raises(UnsupportedError, match="accumulate.*(sequence|SequenceEmpty)"):
        irbridge.export(irbridge.normalize(irbridge.load(model)), "torch", check=False)
