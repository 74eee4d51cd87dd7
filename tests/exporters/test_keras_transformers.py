"""Transformers to Keras and TF: BERT/ViT of the dynamic zoo and tiny `transformers` models
(TorchScript opset 17 with dynamic axes, and dynamo exports) convert with `irbridge.convert`
(checked at two sizes), and the saved artifacts, reloaded as a user would, match onnxruntime on
the source file at another batch size and sequence length. A fine-tuning step trains the Keras
BERT. The per-op rows of the transformer ops are at the end."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.conftest import assert_close
from tests.exporters.test_torch_dynamic import export_torchscript, make_feeds, ort_file

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
torch = pytest.importorskip("torch", reason="torch is not installed (pip install irbridge[torch])")

OTHER_TEXT = {"batch": 4, "sequence": 11}  # neither of the sizes the built-in check runs
TEXT_AXES = {0: "batch", 1: "sequence"}


def _reload_keras(path):
    import irbridge.keras_layers  # noqa: F401  (registers irbridge's layers)

    return keras.saving.load_model(str(path))


def _reload_tf(path):
    import tensorflow as tf

    return tf.saved_model.load(str(path)).signatures["serving_default"]


def check_artifacts(src, tmp_path, sizes, vocab=99, layers=("Dense", "LayerNormalization"), permutes=0, **tol):
    """convert to Keras and TF (checked), reload both, compare with onnxruntime at `sizes`."""
    import tensorflow as tf

    import irbridge

    res = irbridge.convert(str(src), "keras", tmp_path / "m.keras")
    assert res.report.ok, str(res.report)
    kinds = {type(layer).__name__ for layer in res.exported.layers}
    assert set(layers) <= kinds, kinds
    # sequence tensors keep their order (a ViT's patches leave the NHWC conv through Permutes)
    if permutes is not None:
        assert sum(type(layer).__name__ == "Permute" for layer in res.exported.layers) <= permutes
    tf_res = irbridge.convert(str(src), "tf", tmp_path / "saved")
    assert tf_res.report.ok, str(tf_res.report)
    km, serve = _reload_keras(tmp_path / "m.keras"), _reload_tf(tmp_path / "saved")
    names = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]
    feeds = make_feeds(src, sizes, seed=7, vocab=vocab)
    refs = ort_file(src, feeds)
    xs = [feeds[n] for n in names if n in feeds]
    xs = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x for x in xs]  # images NHWC
    got_k = km(xs if len(xs) > 1 else xs[0], training=False)
    got_k = got_k if isinstance(got_k, (list, tuple)) else [got_k]
    spec = serve.structured_input_signature[1]
    order = [t.name for t in km.inputs]
    keys = sorted(spec, key=lambda k: order.index(spec[k].name))
    got_t = serve(**{k: tf.constant(x) for k, x in zip(keys, xs)})
    got_t = [got_t[o.name] for o in onnx.load(str(src), load_external_data=False).graph.output]
    for g_k, g_t, r in zip(got_k, got_t, refs):
        for g in (np.asarray(g_k), np.asarray(g_t)):
            if g.ndim == 4 and g.shape != r.shape:  # image outputs are NHWC too (a segmentation map)
                g = g.transpose(0, 3, 1, 2)
            assert_close(g, r, **tol)
    return res.exported


# --- irbridge's dynamic zoo ---------------------------------------------------------------------

def test_bert_to_keras_and_tf(tmp_path):
    from irbridge.models import dynamic_zoo

    src = dynamic_zoo.export_onnx("bert", tmp_path / "bert.onnx")
    km = check_artifacts(src, tmp_path, OTHER_TEXT, layers=("Dense", "Embedding", "LayerNormalization",
                                                            "Activation", "MultiHeadAttention"))
    assert any(getattr(layer, "activation", None) is keras.activations.gelu for layer in km.layers)


def test_vit_to_keras_and_tf(tmp_path):
    from irbridge.models import dynamic_zoo

    src = dynamic_zoo.export_onnx("vit", tmp_path / "vit.onnx")
    check_artifacts(src, tmp_path, {"batch": 4, "height": 20, "width": 12},
                    layers=("Conv2D", "Dense", "LayerNormalization"), permutes=2)


def test_bert_float16_at_its_own_precision(tmp_path):
    from irbridge.models import dynamic_zoo

    src = dynamic_zoo.export_onnx("bert", tmp_path / "bert16.onnx", half=True)
    km = check_artifacts(src, tmp_path, OTHER_TEXT, atol_scale=5e-3, rtol=5e-3)
    dense = next(layer for layer in km.layers if type(layer).__name__ == "Dense")
    assert dense.kernel.dtype == "float16"


def test_fine_tuning_the_keras_bert_lowers_the_loss(tmp_path):
    from irbridge.models import dynamic_zoo

    import irbridge

    src = dynamic_zoo.export_onnx("bert", tmp_path / "bert.onnx")
    irbridge.convert(str(src), "keras", tmp_path / "m.keras")
    km = _reload_keras(tmp_path / "m.keras")
    rng = np.random.default_rng(3)
    n, s = 16, 10
    x = [rng.integers(0, 99, (n, s)), np.ones((n, s), np.int64), rng.integers(0, 2, (n, s))]
    y = rng.integers(0, 3, n)
    km.compile(optimizer=keras.optimizers.Adam(1e-3),
               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in km.get_weights()]
    first = km.evaluate(x, y, verbose=0)
    km.fit(x, y, epochs=5, batch_size=n, verbose=0)
    assert km.evaluate(x, y, verbose=0) < first
    changed = [not np.array_equal(a, b) for a, b in zip(before, km.get_weights())]
    assert sum(changed) >= len(km.trainable_weights) - 2


# --- tiny transformers models ---------------------------------------------------------------------

class _Logits(torch.nn.Module):
    """A transformers model called with its inputs by name, returning its logits."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *xs):
        return self.model(**dict(zip(self.names, xs))).logits


def _hf(cls_name, config_name, inputs, dynamo=False, **config):
    def build(tmp_path):
        transformers = pytest.importorskip("transformers")
        torch.manual_seed(0)
        cfg = getattr(transformers, config_name)(vocab_size=99, **config)
        model = _Logits(getattr(transformers, cls_name)(cfg).eval(), inputs)
        g = torch.Generator().manual_seed(1)
        args = [torch.randint(0, 2 if "mask" in n or "type" in n else 99, (2, 8), generator=g) for n in inputs]
        if "attention_mask" in inputs:
            args[inputs.index("attention_mask")][:] = 1
        path = tmp_path / "m.onnx"
        if dynamo:
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", min=2, max=60)
            torch.onnx.export(model, tuple(args), str(path), dynamo=True, input_names=list(inputs),
                              output_names=["logits"], dynamic_shapes={"xs": tuple({0: batch, 1: seq} for _ in inputs)})
            return path
        return export_torchscript(model, args, path, inputs, {n: TEXT_AXES for n in inputs},
                                  {0: "batch"}, ("logits",))

    return build


_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
HF_ROWS = [
    ("bert", _hf("BertForSequenceClassification", "BertConfig", ["input_ids", "attention_mask", "token_type_ids"],
                 max_position_embeddings=64, num_labels=3, **_SMALL)),
    ("distilbert", _hf("DistilBertForSequenceClassification", "DistilBertConfig", ["input_ids", "attention_mask"],
                       max_position_embeddings=64, num_labels=3, dim=32, n_layers=2, n_heads=4, hidden_dim=37)),
    ("gpt2", _hf("GPT2LMHeadModel", "GPT2Config", ["input_ids"], dynamo=True, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                 use_cache=False)),
    ("llama", _hf("LlamaForCausalLM", "LlamaConfig", ["input_ids"], dynamo=True, max_position_embeddings=64,
                  num_key_value_heads=2, use_cache=False, **_SMALL)),
    ("bert_dynamo", _hf("BertForSequenceClassification", "BertConfig", ["input_ids", "attention_mask"], dynamo=True,
                        max_position_embeddings=64, num_labels=3, **_SMALL)),
]


@pytest.mark.parametrize("name,build", HF_ROWS, ids=[r[0] for r in HF_ROWS])
def test_transformers_model_to_keras_and_tf(name, build, tmp_path):
    src = build(tmp_path)
    # transformers' own attention still costs a few Permutes where a transposed view is reshaped
    check_artifacts(src, tmp_path, OTHER_TEXT, layers=("Dense", "Embedding"), permutes=None)
