"""Attention blocks to keras.layers.MultiHeadAttention: the dynamic zoo's BERT (with its mask) and
ViT (no mask) and a tiny `transformers` BERT (TorchScript opset 17, and dynamo) get one MHA layer per encoder
layer and no Permute; the .keras file reloads and matches onnxruntime on the source file at two
batch sizes and two sequence lengths (the TF SavedModel at one more). Blocks built with
onnx.helper: the exact pattern (self- and cross-attention) becomes MHA; a scale that is not
1/sqrt(head_dim) and heads split in another order stay Dense + einsum, and still match."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import assert_close, make_model, ort_run
from tests.exporters.test_keras_transformers import (
    HF_ROWS,
    OTHER_TEXT,
    _reload_keras,
    check_artifacts,
)
from tests.exporters.test_torch_dynamic import make_feeds, ort_file

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")

SECOND_TEXT = {"batch": 2, "sequence": 9}  # with OTHER_TEXT: two batch sizes, two lengths


def _kinds(km):
    return [type(layer).__name__ for layer in km.layers]


def _reloaded_matches(src, tmp_path, sizes, layers, vocab=99):
    """The reloaded .keras model (`layers` MHA layers in it) against onnxruntime on the source
    file at `sizes`."""
    km = _reload_keras(tmp_path / "m.keras")
    assert _kinds(km).count("MultiHeadAttention") == layers
    names = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]
    feeds = make_feeds(src, sizes, seed=11, vocab=vocab)
    if "attention_mask" in feeds:  # the mask is exercised: padded positions in some rows
        assert (feeds["attention_mask"] == 0).any() and feeds["attention_mask"].any(axis=1).all()
    xs = [feeds[n] for n in names]
    xs = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x for x in xs]
    got = km(xs if len(xs) > 1 else xs[0], training=False)
    assert_close(np.asarray(got), ort_file(src, feeds)[0])


def _keras_only(src, tmp_path):
    """convert to .keras (checked against onnxruntime at two sizes by irbridge itself); the TF
    SavedModels of these models are test_keras_transformers.py's (with the same MHA layers)."""
    import irbridge

    res = irbridge.convert(str(src), "keras", tmp_path / "m.keras")
    assert res.report.ok, str(res.report)
    return res.exported


def _mha_layers(km):
    return [layer for layer in km.layers if isinstance(layer, keras.layers.MultiHeadAttention)]


def test_dynamic_zoo_bert_attention_is_multi_head_attention(tmp_path):
    pytest.importorskip("torch")
    from irbridge.models import dynamic_zoo

    src = dynamic_zoo.export_onnx("bert", tmp_path / "bert.onnx")
    km = check_artifacts(src, tmp_path, OTHER_TEXT, layers=("MultiHeadAttention", "Dense", "Embedding"), permutes=0)
    mha = _mha_layers(km)
    assert [m.name for m in mha] == [f"layers_{i}_attention" for i in range(dynamic_zoo.LAYERS)]
    assert all(m.num_heads == dynamic_zoo.HEADS and m.key_dim == dynamic_zoo.HIDDEN // dynamic_zoo.HEADS
               for m in mha)
    assert not any(layer.name.startswith("layers_") and "attention" in layer.name and
                   isinstance(layer, keras.layers.Dense) for layer in km.layers)
    _reloaded_matches(src, tmp_path, SECOND_TEXT, dynamic_zoo.LAYERS)


def test_dynamic_zoo_vit_attention_is_multi_head_attention(tmp_path):
    pytest.importorskip("torch")
    from irbridge.models import dynamic_zoo

    src = dynamic_zoo.export_onnx("vit", tmp_path / "vit.onnx")
    km = _keras_only(src, tmp_path)
    # the two Permutes are the patch conv's NHWC boundary, outside the blocks
    assert _kinds(km).count("Permute") <= 2 and len(_mha_layers(km)) == dynamic_zoo.LAYERS
    assert not any("attention" in layer.name for layer in km.layers if type(layer).__name__ == "Permute")
    for sizes in ({"batch": 4, "height": 20, "width": 12}, {"batch": 2, "height": 12, "width": 16}):
        _reloaded_matches(src, tmp_path, sizes, dynamic_zoo.LAYERS)


@pytest.mark.parametrize("row", ["bert", "bert_dynamo"])  # TorchScript opset 17; dynamo (B*H-merged keys)
def test_transformers_bert_attention_is_multi_head_attention(row, tmp_path):
    pytest.importorskip("torch")
    src = dict(HF_ROWS)[row](tmp_path)
    km = _keras_only(src, tmp_path)
    assert "Permute" not in _kinds(km)
    assert [m.name for m in _mha_layers(km)] == [f"model_bert_encoder_layer_{i}_attention" for i in range(2)]
    for sizes in (OTHER_TEXT, SECOND_TEXT):
        _reloaded_matches(src, tmp_path, sizes, 2)


# --- blocks written with onnx.helper --------------------------------------------------------------
E, H, D = 16, 4, 4


def _attention_model(scale=D ** -0.5, split=(H, D), q_perm=(0, 2, 1, 3), k_perm=(0, 2, 3, 1),
                     out_perm=(0, 2, 1, 3), cross=False, mask=None, seed=0):
    """x [batch, seq, E] (and y [batch, kv, E] when `cross`) -> attention -> [batch, seq, E];
    `mask` "int": m [batch, seq] 0/1 added to the scores as (1 - m) * finfo.min (as BERT does);
    "float": bias [batch, 1, 1, seq] added to the scores as it is."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, a):
        inits.append(helper.make_tensor(name, TensorProto.FLOAT if a.dtype.kind == "f" else TensorProto.INT64,
                                        a.shape, a.reshape(-1).tolist()))
        return name

    def proj(name, x):
        w = const(f"{name}.w", rng.standard_normal((E, E)).astype(np.float32) * 0.3)
        b = const(f"{name}.b", rng.standard_normal(E).astype(np.float32) * 0.1)
        nodes.append(helper.make_node("MatMul", [x, w], [f"{name}_mm"], name=f"/attn/{name}/MatMul"))
        nodes.append(helper.make_node("Add", [f"{name}_mm", b], [f"{name}_out"], name=f"/attn/{name}/Add"))
        return f"{name}_out"

    split_shape = const("split", np.array([0, 0, *split], np.int64))
    kv = "y" if cross else "x"
    heads = {}
    for name, src, perm in (("q", "x", q_perm), ("k", kv, k_perm), ("v", kv, q_perm)):
        nodes.append(helper.make_node("Reshape", [proj(name, src), split_shape], [f"{name}_4d"]))
        nodes.append(helper.make_node("Transpose", [f"{name}_4d"], [f"{name}_t"], perm=list(perm)))
        heads[name] = f"{name}_t"
    nodes += [
        helper.make_node("MatMul", [heads["q"], heads["k"]], ["scores"]),
        helper.make_node("Mul", ["scores", const("scale", np.array(scale, np.float32))], ["scaled"]),
    ]
    if mask == "int":
        nodes += [
            helper.make_node("Unsqueeze", ["m", const("axes", np.array([1, 2], np.int64))], ["m4"]),
            helper.make_node("Cast", ["m4"], ["mf"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [const("one", np.array(1.0, np.float32)), "mf"], ["inv"]),
            helper.make_node("Mul", ["inv", const("min", np.array(np.finfo(np.float32).min, np.float32))], ["bias"]),
        ]
    if mask:
        nodes.append(helper.make_node("Add", ["scaled", "bias"], ["masked"]))
    nodes += [
        helper.make_node("Softmax", ["masked" if mask else "scaled"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", heads["v"]], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=list(out_perm)),
        helper.make_node("Reshape", ["ctx_t", const("merge", np.array([0, 0, E], np.int64))], ["merged"]),
    ]
    out = proj("o", "merged")
    nodes.append(helper.make_node("Relu", [out], ["out"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", E])]
    if cross:
        inputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "kv", E]))
    if mask == "int":
        inputs.append(helper.make_tensor_value_info("m", TensorProto.INT64, ["batch", "seq"]))
    elif mask == "float":
        inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["batch", 1, 1, "seq"]))
    return make_model(nodes, inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq", E])],
                      inits)


ROWS = [  # id, block, MHA layers, why not (the debug log's reason)
    ("self", dict(), 1, None),
    ("cross", dict(cross=True), 1, None),
    ("mask_from_0_1_ids", dict(mask="int"), 1, None),
    ("mask_any_float", dict(mask="float"), 0, "an Add on the scores that is not a mask made from 0/1 values"),
    ("scale_not_inverse_sqrt_head_dim", dict(scale=0.3), 0, "scaled by 0.3, not 1/sqrt(4)"),
    # heads interleaved: [batch, seq, head_dim, heads] -> the heads are the last axis of the split
    ("heads_split_in_another_order", dict(split=(D, H), q_perm=(0, 3, 1, 2), k_perm=(0, 3, 2, 1),
                                          out_perm=(0, 2, 3, 1)), 0, "holds axes ('B', 'D', 'T', 'H')"),
]


@pytest.mark.parametrize("kwargs,mha,why", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_helper_built_attention(kwargs, mha, why, tmp_path, caplog):
    import irbridge

    model = _attention_model(**kwargs)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "attn.onnx"
    onnx.save(model, str(path))
    with caplog.at_level(logging.DEBUG, logger="irbridge.exporters.keras.ops.attention"):
        res = irbridge.convert(str(path), "keras", tmp_path / "m.keras")
    assert res.report.ok, str(res.report)
    reasons = [r.getMessage() for r in caplog.records if r.name.endswith("keras.ops.attention")]
    assert (why is None and not reasons) or (why is not None and any(why in r for r in reasons)), reasons
    kinds = _kinds(res.exported)
    assert kinds.count("MultiHeadAttention") == mha, kinds
    if mha:
        assert "Permute" not in kinds and kinds.count("Dense") == 0, kinds
    else:  # today's path: Dense projections, einsum for the two products of activations
        assert kinds.count("Dense") == 4, kinds
    km = _reload_keras(tmp_path / "m.keras")
    for batch, seq, kv in ((2, 9, 7), (3, 12, 10)):
        rng = np.random.default_rng(batch)
        feeds = {"x": rng.standard_normal((batch, seq, E)).astype(np.float32)}
        if kwargs.get("cross"):
            feeds["y"] = rng.standard_normal((batch, kv, E)).astype(np.float32)
        if kwargs.get("mask") == "int":  # padded positions in every row but one token kept
            feeds["m"] = rng.integers(0, 2, (batch, seq))
            feeds["m"][:, 0] = 1
            assert (feeds["m"] == 0).any()
        elif kwargs.get("mask") == "float":
            feeds["bias"] = rng.standard_normal((batch, 1, 1, seq)).astype(np.float32)
        got = km(list(feeds.values()) if len(feeds) > 1 else feeds["x"], training=False)
        assert_close(np.asarray(got), ort_run(model, feeds)[0])


def test_cli_debug_says_why_attention_stays_dense(tmp_path, capsys):
    """`irbridge convert --debug` prints the exporter's reasons on stderr; without it they stay quiet."""
    from irbridge.cli import main

    path = tmp_path / "attn.onnx"
    onnx.save(_attention_model(scale=0.3), str(path))
    for flag, shown in (("--debug", True), (None, False)):
        argv = ["convert", str(path), "--to", "keras", "-o", str(tmp_path / f"m{shown}.keras")] + ([flag] if flag else [])
        assert main(argv) == 0
        err = capsys.readouterr().err
        said = "stays Dense + einsum: the scores are scaled by 0.3, not 1/sqrt(4)" in err
        assert said == shown, err
