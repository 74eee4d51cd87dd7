"""PyTorch sources keep their dynamic axes (issue 14): the batch free by default, `dynamic=`
for more, a forward that fixes the batch recorded with torch's reason, bad specs clear errors.

References: the source module itself (torch) and onnxruntime, at two sizes of every free dim."""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
import pytest

from irbridge import importers
from tests.conftest import assert_close, ort_run, seeded


def _cnn(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 4, 3), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5),
    ).eval()


def _dims(value: ir.Value) -> list:
    return [d.value if isinstance(d, ir.SymbolicDim) else d for d in value.shape]


def _run(torch, module, *args):
    with torch.no_grad():
        out = module(*(torch.from_numpy(a) for a in args))
    return out.numpy()


def test_the_batch_of_a_cnn_stays_free_and_every_export_runs_at_two_batches(torch):
    import irbridge
    from irbridge import dims

    net = _cnn(torch)
    x = seeded((1, 3, 16, 16), seed=1)  # batch 1: traced at 2, so the batch is not specialized
    m = importers.load(net, inputs=(x,))
    (inp,), (out,) = m.graph.inputs, m.graph.outputs
    assert _dims(inp) == ["batch", 3, 16, 16]
    assert _dims(out) == ["batch", 5]
    assert dims.summary(m)["fixed"] == []
    assert {"input": inp.name, "axis": 0, "label": "batch"} in dims.summary(m)["free"]
    for batch, seed in ((2, 2), (3, 3)):
        xb = seeded((batch, 3, 16, 16), seed=seed)
        assert_close(ort_run(m, {inp.name: xb})[0], _run(torch, net, xb))

    res = irbridge.convert(net, "torch", inputs=(x,), check=False)
    for batch, seed in ((2, 4), (3, 5)):
        xb = seeded((batch, 3, 16, 16), seed=seed)
        with torch.no_grad():
            got = res.exported(torch.from_numpy(xb)).numpy()
        assert_close(got, _run(torch, net, xb))


def test_a_forward_that_fixes_the_batch_is_traced_static_and_says_why(torch):
    from irbridge import dims

    class FixedBatch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4 * 6 * 6, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).reshape(1, -1))

    torch.manual_seed(1)
    net = FixedBatch().eval()
    x = seeded((1, 3, 8, 8), seed=6)
    m = importers.load(net, inputs=(x,))
    assert _dims(m.graph.inputs[0]) == [1, 3, 8, 8]
    (entry,) = dims.summary(m)["fixed"]
    assert (entry["input"], entry["axis"], entry["size"]) == ("x", 0, 1)
    assert "forward fixes it" in entry["why"] and "\n" not in entry["why"]
    assert len(entry["why"]) > len("the module's forward fixes it: ") + 10  # torch's reason follows
    assert json.loads(m.metadata_props[dims.FIXED])[0]["why"] == entry["why"]
    assert_close(ort_run(m, {"x": x})[0], _run(torch, net, x))


def test_a_bert_encoder_keeps_batch_and_sequence_free(torch):
    transformers = pytest.importorskip("transformers", reason="transformers is a test-only dependency")
    from irbridge import dims

    vocab, positions = 97, 40
    config = transformers.BertConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=positions, hidden_act="gelu",
    )
    torch.manual_seed(2)
    bert = transformers.BertModel(config).eval()
    rng = np.random.default_rng(7)

    def feeds(batch, seq):
        ids = rng.integers(0, vocab, size=(batch, seq), dtype=np.int64)
        mask = (rng.random((batch, seq)) < 0.8).astype(np.int64)
        mask[:, 0] = 1
        return {"input_ids": ids, "attention_mask": mask}

    axes = {0: "batch", 1: "sequence"}
    m = importers.load(bert, inputs=feeds(1, 8), dynamic={"input_ids": axes, "attention_mask": axes})
    inputs = {v.name: v for v in m.graph.inputs}
    assert _dims(inputs["input_ids"]) == ["batch", "sequence"]
    assert _dims(inputs["attention_mask"]) == ["batch", "sequence"]
    assert inputs["input_ids"].dtype == ir.DataType.INT64
    assert dims.summary(m)["fixed"] == []
    assert json.loads(m.metadata_props["irbridge.dim_ranges"])["sequence"][1] == positions
    for batch, seq in ((2, 9), (3, 16)):
        feed = feeds(batch, seq)
        with torch.no_grad():
            ref = bert(**{k: torch.from_numpy(v) for k, v in feed.items()})
        got = ort_run(m, feed)
        assert_close(got[0], ref.last_hidden_state.numpy())
        assert_close(got[1], ref.pooler_output.numpy())


def test_an_axis_the_model_cannot_free_is_an_input_error(torch):
    import irbridge

    net = torch.nn.Sequential(torch.nn.Linear(8, 4))
    with pytest.raises(irbridge.InputError, match=r"cannot leave x axis 1 \(features\) free: .+") as err:
        importers.load(net, inputs={"x": seeded((2, 8))}, dynamic={"x": {1: "features"}})
    assert err.value.exit_code == 2
    assert "--dynamic" in str(err.value) and "\n" not in str(err.value)


def test_declared_axes_share_a_dim_by_label(torch):

    class Add(torch.nn.Module):
        def forward(self, a, b):
            return a * 2 + b

    m = importers.load(Add(), inputs=(seeded((1, 5, 3)), seeded((1, 5, 3), seed=1)),
                       dynamic=["a:1=seq", "b:1=seq"])
    a, b = m.graph.inputs
    assert _dims(a) == _dims(b) == ["batch", "seq", 3]
    fa, fb = seeded((3, 9, 3), seed=2), seeded((3, 9, 3), seed=3)
    assert_close(ort_run(m, {"a": fa, "b": fb})[0], fa * 2 + fb)


def test_shapes_in_inputs_keep_the_batch_free(torch):

    net = _cnn(torch)
    m = importers.load(net, inputs={"x": (1, 3, 16, 16)})
    assert _dims(m.graph.inputs[0]) == ["batch", 3, 16, 16]


def test_dict_inputs_go_by_name_and_integer_arrays_keep_their_dtype(torch):

    class Lookup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(11, 4)

        def forward(self, ids, scale):
            return self.emb(ids.long()) * scale

    torch.manual_seed(3)
    net = Lookup().eval()
    ids = np.random.default_rng(4).integers(0, 11, size=(2, 5)).astype(np.int32)
    scale = np.random.default_rng(5).standard_normal((2, 5, 1))  # float64: takes the module's float32
    m = importers.load(net, inputs={"scale": scale, "ids": ids})  # not the forward's order
    inputs = {v.name: v for v in m.graph.inputs}
    assert inputs["ids"].dtype == ir.DataType.INT32
    assert inputs["scale"].dtype == ir.DataType.FLOAT
    ids3 = np.random.default_rng(6).integers(0, 11, size=(3, 5)).astype(np.int32)
    scale3 = seeded((3, 5, 1), seed=7)
    ref = _run(torch, net, ids3, scale3)
    assert_close(ort_run(m, {"ids": ids3, "scale": scale3})[0], ref)


def test_scalars_and_other_arguments_stay_static(torch):
    from irbridge import dims

    class Scaled(torch.nn.Module):
        def forward(self, x, factor, t, tables):
            return (x * t + tables[0].sum() - tables[1]["b"].sum()) * factor

    x, t, table = seeded((1, 4)), np.array(0.5, np.float32), seeded((3, 4), seed=1)
    other = seeded((3, 4), seed=9)
    tables = [torch.from_numpy(table), {"b": torch.from_numpy(other)}]
    m = importers.load(Scaled(), inputs=(x, 3.0, torch.tensor(t), tables))
    shapes = {v.name: _dims(v) for v in m.graph.inputs}
    assert shapes["x"] == ["batch", 4]
    assert shapes["t"] == []
    assert shapes["tables_0"] == shapes["tables_1_b"] == [3, 4]  # a list of tensors stays static
    assert dims.summary(m)["fixed"] == []
    x2 = seeded((2, 4), seed=2)
    got = ort_run(m, {"x": x2, "t": t, "tables_0": table, "tables_1_b": other})[0]
    assert_close(got, (x2 * t + table.sum() - other.sum()) * 3.0)


def test_an_input_whose_axis_0_is_not_the_batch_stays_static_and_says_so(torch):
    from irbridge import dims

    class Gather(torch.nn.Module):
        def forward(self, x, table):
            return x @ table.T

    x, table = seeded((1, 4)), seeded((3, 4), seed=1)
    m = importers.load(Gather(), inputs=(x, table))
    assert {v.name: _dims(v) for v in m.graph.inputs} == {"x": ["batch", 4], "table": [3, 4]}
    (entry,) = dims.summary(m)["fixed"]
    assert (entry["input"], entry["axis"], entry["size"]) == ("table", 0, 3)
    assert "not the batch" in entry["why"]
    x2 = seeded((2, 4), seed=2)
    assert_close(ort_run(m, {"x": x2, "table": table})[0], x2 @ table.T)


@pytest.mark.parametrize("dynamic, match", [
    ({"y": {0: "batch"}}, r"names 'y', which is not an input of the module \(its inputs: x\)"),
    ({"x": {4: "w"}}, r"axis 4 of input 'x' is out of range"),
    ({"x": {"1": "w"}}, r"an axis is an integer"),
    ({"x": {1: ""}}, r"a label is a non-empty string"),
    (["x"], r"bad --dynamic spec 'x'"),
])
def test_bad_dynamic_specs_are_input_errors(torch, dynamic, match):
    import irbridge

    with pytest.raises(irbridge.InputError, match=match) as err:
        importers.load(_cnn(torch), inputs={"x": seeded((1, 3, 16, 16))}, dynamic=dynamic)
    assert "--dynamic" in str(err.value) or "dynamic=" in str(err.value)


def test_dynamic_for_another_format_is_an_input_error():
    import onnx

    import irbridge
    from tests.conftest import make_model

    model = make_model([onnx.helper.make_node("Relu", ["x"], ["y"])],
                       [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
                       [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])])
    with pytest.raises(irbridge.InputError, match="applies to PyTorch sources"):
        importers.load(model, dynamic={"x": {0: "batch"}})
    assert importers.load(model, dynamic={}).graph.inputs[0].name == "x"  # no --dynamic given


def test_bad_shapes_in_inputs_are_input_errors(torch):
    import irbridge

    net = _cnn(torch)
    with pytest.raises(irbridge.InputError, match=r"every dim must be >= 1"):
        importers.load(net, inputs={"x": (1, -3, 16, 16)})
    with pytest.raises(irbridge.InputError, match=r"GiB"):
        importers.load(net, inputs={"x": (1, 1048576, 1048576)})


def test_a_module_only_torch_onnx_fallbacks_trace_keeps_a_static_batch_and_says_why(torch, monkeypatch):
    """When torch.export cannot trace the module at all, torch.onnx's own fallbacks may: the
    batch is then static and recorded, and an axis the user declared is an InputError."""
    import irbridge
    from irbridge import dims
    from irbridge.importers import pytorch

    def refuse(*args, **kwargs):
        raise pytorch._Failed("torch.export says no")

    monkeypatch.setattr(pytorch, "_export", refuse)
    net = _cnn(torch)
    x = seeded((2, 3, 16, 16), seed=8)
    m = importers.load(net, inputs={"x": x})
    assert _dims(m.graph.inputs[0]) == [2, 3, 16, 16]
    (entry,) = dims.summary(m)["fixed"]
    assert (entry["input"], entry["axis"], entry["size"]) == ("x", 0, 2)
    assert "torch.export says no" in entry["why"]
    assert_close(ort_run(m, {"x": x})[0], _run(torch, net, x))
    with pytest.raises(irbridge.InputError, match=r"cannot leave x axis 0 \(batch\) free: torch.export cannot"):
        importers.load(net, inputs={"x": x}, dynamic={"x": {0: "batch"}})
