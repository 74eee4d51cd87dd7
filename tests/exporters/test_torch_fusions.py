"""What model.py writes as one layer where exporters wrote several nodes: a MatMul followed by
its bias Add is one nn.Linear with a bias (TorchScript writes `bias + x @ W`), and the erf GELU's
five elementwise nodes are one nn.GELU. Checked against onnxruntime at batch 2 and 3."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import assert_close, make_model, ort_run

torch = pytest.importorskip("torch")


def _mlp(bias_first: bool, gelu_start: str):
    rng = np.random.default_rng(3)
    start = (helper.make_node("Div", ["h", "root2"], ["d"]) if gelu_start == "Div"
             else helper.make_node("Mul", ["h", "inv_root2"], ["d"]))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]),
             helper.make_node("Add", ["b", "xw"] if bias_first else ["xw", "b"], ["h"]),
             start,
             helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]),
             helper.make_node("Mul", ["h", "e1"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["g"]),
             helper.make_node("MatMul", ["g", "w2"], ["y"])]
    inits = {"w": rng.standard_normal((8, 6)).astype(np.float32), "b": rng.standard_normal(6).astype(np.float32),
             "root2": np.array(math.sqrt(2), np.float32), "inv_root2": np.array(1 / math.sqrt(2), np.float32),
             "one": np.array(1, np.float32), "half": np.array(0.5, np.float32),
             "w2": rng.standard_normal((6, 3)).astype(np.float32)}
    return make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 8])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5, 3])],
                      [numpy_helper.from_array(v, k) for k, v in inits.items()], opset=17)


@pytest.mark.parametrize("bias_first,gelu_start", [(True, "Div"), (False, "Mul")])
def test_bias_add_joins_the_linear_and_the_erf_chain_is_one_gelu(bias_first, gelu_start):
    import irbridge

    model = _mlp(bias_first, gelu_start)
    res = irbridge.convert(model, "torch")
    assert res.report.ok and [s["x"][0] for s in res.report.shapes] == [2, 3]
    m = res.exported
    kinds = [type(mod).__name__ for _, mod in m.named_modules() if mod is not m]
    assert kinds.count("GELU") == 1, kinds
    linears = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    assert [lin.bias is not None for lin in linears] == [True, False]
    for batch in (2, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 5, 8)).astype(np.float32)
        with torch.no_grad():
            got = m(torch.from_numpy(x))
        assert_close(got.numpy(), ort_run(model, {"x": x})[0])


def test_a_chain_with_another_constant_stays_elementwise():
    """Div by 2 instead of sqrt 2 is not GELU: no nn.GELU, and still right."""
    import irbridge

    model = _mlp(True, "Div")
    for t in model.graph.initializer:
        if t.name == "root2":
            t.CopyFrom(numpy_helper.from_array(np.array(2.0, np.float32), "root2"))
    res = irbridge.convert(model, "torch")
    assert res.report.ok
    assert not [mod for mod in res.exported.modules() if isinstance(mod, torch.nn.GELU)]


def test_attention_core_is_one_sdpa_call_even_for_a_fully_masked_row(tmp_path):
    """BERT's TorchScript export (q @ kT + Where(mask, 0, -inf) -> Softmax -> NaN guard -> @ v)
    becomes F.scaled_dot_product_attention in model.py; reloaded as a user would, it matches
    onnxruntime at a third size, a row whose mask is all zeros included (the guard's 0 output)."""
    pytest.importorskip("transformers")
    from irbridge.models import hf_corpus

    import irbridge
    from irbridge.exporters.torch import load_saved

    src = hf_corpus.export("bert", tmp_path / "bert.onnx", "torchscript")
    res = irbridge.convert(src, "torch", tmp_path / "out")
    assert res.report.ok
    code = (tmp_path / "out" / "model.py").read_text()
    assert code.count("F.scaled_dot_product_attention(") == 2 and "torch._C" not in code
    rng = np.random.default_rng(9)
    ids = rng.integers(3, hf_corpus.VOCAB, (4, 11)).astype(np.int64)
    mask = (np.arange(11) < np.array([[11], [6], [1], [0]])).astype(np.int64)  # the last row: all masked
    want = ort_run(__import__("onnx").load(src), {"input_ids": ids, "attention_mask": mask})[0]
    model = load_saved(tmp_path / "out")
    with torch.no_grad():
        got = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.isfinite(got).all()
    assert_close(got, want)


def _two_attentions(q_scale: str, minus: float, dt=np.float32):
    """Two attention cores over x [N, 6, 8] (2 heads of 4) as TorchScript writes them: q and k each
    scaled by sqrt(sqrt(1/4)) (k before its Transpose to [N, H, D, S]), the scores plus
    Where(m, 0, minus) of a boolean mask m [N, 1, 6, 6] (each core its own Where), Softmax, NaN
    guard, @ v. `q_scale`: "scalar", or "per_head" (a [1, 2, 1, 1] factor, not a scalar); `dt` the
    float type of it all."""
    rng = np.random.default_rng(5)
    elem = TensorProto.FLOAT16 if dt == np.float16 else TensorProto.FLOAT
    a = dt(0.5 ** 0.5)
    inits = {"shape": np.array([0, 6, 2, 4], np.int64), "zero": np.array([0.0], dt),
             "minus": np.array([minus], dt), "nan0": np.array(0.0, dt),
             "a": np.array(a, dt),
             "a_q": (np.array(a, dt) if q_scale == "scalar"
                     else np.array([a, 0.25], dt).reshape(1, 2, 1, 1))}
    nodes = []
    for c in "12":
        for w in "qkv":
            inits[f"w{w}{c}"] = rng.standard_normal((8, 8)).astype(dt)
            nodes += [helper.make_node("MatMul", ["x", f"w{w}{c}"], [f"{w}{c}_lin"]),
                      helper.make_node("Reshape", [f"{w}{c}_lin", "shape"], [f"{w}{c}_heads"])]
        nodes += [helper.make_node("Transpose", [f"q{c}_heads"], [f"q{c}_t"], perm=[0, 2, 1, 3]),
                  helper.make_node("Mul", [f"q{c}_t", "a_q"], [f"q{c}"]),
                  helper.make_node("Mul", [f"k{c}_heads", "a"], [f"k{c}_s"]),
                  helper.make_node("Transpose", [f"k{c}_s"], [f"kt{c}"], perm=[0, 2, 3, 1]),
                  helper.make_node("Transpose", [f"v{c}_heads"], [f"v{c}"], perm=[0, 2, 1, 3]),
                  helper.make_node("MatMul", [f"q{c}", f"kt{c}"], [f"s{c}"]),
                  helper.make_node("Where", ["m", "zero", "minus"], [f"mask{c}"]),
                  helper.make_node("Add", [f"s{c}", f"mask{c}"], [f"sm{c}"]),
                  helper.make_node("Softmax", [f"sm{c}"], [f"p{c}"], axis=-1),
                  helper.make_node("IsNaN", [f"p{c}"], [f"nan{c}"]),
                  helper.make_node("Where", [f"nan{c}", "nan0", f"p{c}"], [f"pg{c}"]),
                  helper.make_node("MatMul", [f"pg{c}", f"v{c}"], [f"o{c}"])]
    nodes.append(helper.make_node("Add", ["o1", "o2"], ["y"]))
    return make_model(nodes, [helper.make_tensor_value_info("x", elem, ["N", 6, 8]),
                              helper.make_tensor_value_info("m", TensorProto.BOOL, ["N", 1, 6, 6])],
                      [helper.make_tensor_value_info("y", elem, ["N", 2, 6, 4])],
                      [numpy_helper.from_array(v, k) for k, v in inits.items()], opset=17)


@pytest.mark.parametrize("q_scale,minus,wheres,dt", [
    ("scalar", -np.inf, 1, np.float32),  # the scalar Muls join scale=, one additive mask for both cores
    ("per_head", -np.inf, 1, np.float32),  # a per-head factor is no scalar: q keeps its Mul
    ("scalar", -1e4, 2, np.float32),  # Where(m, 0, -1e4) is no boolean mask: each core adds its own
    ("scalar", -np.inf, 1, np.float16),  # the shared mask in the model's half precision
])
def test_attention_scalars_join_scale_and_the_mask_is_made_once(tmp_path, q_scale, minus, wheres, dt):
    """q * a and (k * a).T become SDPA's scale= over a view of k (no copy of q or k), the layers'
    repeated Where(m, 0, -inf) one torch.where; other forms fall back. Against onnxruntime at
    batch 2 and 3, fully masked rows (the guard's zeros) included."""
    import irbridge
    from irbridge.exporters.torch import load_saved

    model = _two_attentions(q_scale, minus, dt)
    res = irbridge.convert(model, "torch", tmp_path / "out")
    assert res.report.ok and [s["x"][0] for s in res.report.shapes] == [2, 3]
    code = (tmp_path / "out" / "model.py").read_text()
    folded = q_scale == "scalar"
    assert code.count("F.scaled_dot_product_attention(") == 2
    assert code.count("torch.where(") == wheres, code
    a = float(dt(0.5 ** 0.5))
    assert code.count(" * ") == (0 if folded else 2), code  # a per-head factor stays on q
    scale = str(np.float32(a * a if folded else a))  # 0.49999997: the float32 a squared
    assert code.count(f"scale = {scale})") == 2, code
    exported = load_saved(tmp_path / "out")
    for batch in (2, 3):
        rng = np.random.default_rng(batch)
        x = rng.standard_normal((batch, 6, 8)).astype(dt)
        m = rng.random((batch, 1, 6, 6)) > 0.4
        m[0, 0, 1] = False  # a fully masked row
        want = ort_run(model, {"x": x, "m": m})[0]
        with torch.no_grad():
            got = exported(torch.from_numpy(x), torch.from_numpy(m)).numpy()
        assert got.dtype == dt
        assert_close(got, want, **({} if dt == np.float32 else {"rtol": 5e-3, "atol_scale": 5e-3}))  # DESIGN §6
        if minus == -np.inf:
            assert np.all(got[0, :, 1] == 0)
