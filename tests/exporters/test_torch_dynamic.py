"""Models exported with dynamic axes (TorchScript, opset 17, the way Hugging Face optimum makes
them) convert to PyTorch and run at three different sizes, against onnxruntime on the original
file: the in-memory GraphModule and the written model.py + weights.safetensors, reloaded as a
user would (`Model().load_state_dict(safetensors.torch.load_file(...))`)."""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest

from tests.conftest import assert_close

torch = pytest.importorskip("torch", reason="torch is not installed (pip install irbridge[torch])")

VOCAB = 99  # every token table below has at least this many rows

BERT_SIZES = [{"batch": 1, "sequence": 8}, {"batch": 2, "sequence": 13}, {"batch": 3, "sequence": 21}]
IMAGE_SIZES = [{"batch": 1, "height": 16, "width": 16}, {"batch": 2, "height": 12, "width": 20},
               {"batch": 3, "height": 32, "width": 8}]
AUDIO_SIZES = [{"batch": 1, "samples": 1000}, {"batch": 2, "samples": 1600}, {"batch": 3, "samples": 2400}]


# --- helpers shared with test_torch_half -------------------------------------------------------

def ort_file(path, feeds):
    """onnxruntime on the original .onnx file: the independent reference."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, feeds)


def make_feeds(path, sizes: dict, seed: int, vocab: int = VOCAB) -> dict[str, np.ndarray]:
    """Seeded inputs for every graph input, symbolic dims resolved by `sizes` (dim_param ->
    size): floats standard normal; masks and token types 0/1 (each mask row with a 1 in it);
    token ids below `vocab`."""
    model = onnx.load(str(path), load_external_data=False)
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        t = inp.type.tensor_type
        shape = tuple(sizes[d.dim_param] if d.dim_param else d.dim_value for d in t.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        if dtype.kind == "f":
            feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
        elif "mask" in inp.name:
            mask = rng.integers(0, 2, shape)
            mask[..., 0] = 1
            feeds[inp.name] = mask.astype(dtype)
        elif "type" in inp.name:
            feeds[inp.name] = rng.integers(0, 2, shape).astype(dtype)
        else:
            feeds[inp.name] = rng.integers(0, vocab, shape).astype(dtype)
    return feeds


def load_as_user(directory):
    """Import DIR/model.py and restore DIR/weights.safetensors as the file's docstring says."""
    import safetensors.torch

    spec = importlib.util.spec_from_file_location(f"irbridge_user_{abs(hash(str(directory)))}",
                                                  directory / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(safetensors.torch.load_file(str(directory / "weights.safetensors")))
    return model.eval()


def run_torch(model, feeds: dict, names) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*(torch.from_numpy(feeds[n]) for n in names))
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out]


def convert(path, out_dir):
    """ONNX file -> (GraphModule, user-reloaded model.py); no built-in check (ours is below)."""
    import irbridge

    res = irbridge.convert(str(path), "torch", out_dir, check=False)
    return res.exported, load_as_user(out_dir)


def check_sizes(path, out_dir, all_sizes, vocab=VOCAB, **tol):
    gm, user = convert(path, out_dir)
    names = [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
    shapes = set()
    for seed, sizes in enumerate(all_sizes):
        feeds = make_feeds(path, sizes, seed=seed + 10, vocab=vocab)
        names = [n for n in names if n in feeds]
        refs = ort_file(path, feeds)
        for label, model in (("GraphModule", gm), ("model.py", user)):
            got = run_torch(model, feeds, names)
            assert len(got) == len(refs), label
            for g, r in zip(got, refs):
                assert g.dtype == r.dtype, (label, sizes, g.dtype, r.dtype)
                try:
                    assert_close(g, r, **tol)
                except AssertionError as e:
                    raise AssertionError(f"{label} at {sizes}: {e}") from None
        shapes.add(tuple(f.shape for f in feeds.values()))
    assert len(shapes) == len(all_sizes)  # really three different sizes
    return gm, user


def export_torchscript(model, args, path, input_names, axes, output_axes, output_names=("output",)):
    """TorchScript ONNX export, opset 17, dynamic axes: how optimum and most published files are made."""
    torch.onnx.export(model, tuple(args), str(path), dynamo=False, opset_version=17,
                      input_names=list(input_names), output_names=list(output_names),
                      dynamic_axes={**{n: axes[n] for n in input_names},
                                    **{n: output_axes for n in output_names}})
    return path


# --- irbridge's own dynamic zoo ----------------------------------------------------------------

ZOO_ROWS = [("bert", BERT_SIZES), ("vit", IMAGE_SIZES), ("audio", AUDIO_SIZES)]


@pytest.mark.parametrize("name,sizes", ZOO_ROWS, ids=[r[0] for r in ZOO_ROWS])
def test_dynamic_zoo_model_runs_at_three_sizes(name, sizes, tmp_path):
    from irbridge.models import dynamic_zoo

    path = dynamic_zoo.export_onnx(name, tmp_path / f"{name}.onnx")
    gm, _ = check_sizes(path, tmp_path / "out", sizes)
    text = (tmp_path / "out" / "model.py").read_text()
    assert "nn.Linear(" in text and "nn.LayerNorm(" in text
    # shape arithmetic reads as a person writes it: sizes read live, no shape tensors
    assert "batch = " in text and ".size(0)" in text
    assert "onnx_shape(" not in text and ".tolist()" not in text


# --- the same architectures from transformers, tiny configs, random weights ----------------------

SEQ_AXES = {0: "batch", 1: "sequence"}


def _text_model(cls_name, config_name, inputs, **config):
    def build(tmp_path):
        transformers = pytest.importorskip("transformers")
        torch.manual_seed(0)
        cfg = getattr(transformers, config_name)(vocab_size=VOCAB, max_position_embeddings=64,
                                                 num_labels=3, return_dict=False, **config)
        model = getattr(transformers, cls_name)(cfg).eval()
        g = torch.Generator().manual_seed(1)
        args = [torch.randint(0, 2 if "mask" in n or "type" in n else VOCAB, (2, 8), generator=g)
                for n in inputs]
        args[inputs.index("attention_mask")][:, 0] = 1
        return export_torchscript(model, args, tmp_path / "m.onnx", inputs,
                                  {n: SEQ_AXES for n in inputs}, {0: "batch"}, ("logits",))

    return build


def _vit(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32,
                                 num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                                 num_labels=5)
    model = transformers.ViTForImageClassification(cfg).eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return export_torchscript(model, [x], tmp_path / "m.onnx", ["pixel_values"],
                              {"pixel_values": {0: "batch"}}, {0: "batch"}, ("logits",))


def _wav2vec2(tmp_path, norm="group"):
    """A tiny transformers Wav2Vec2Model (GroupNorm or, with norm="layer", LayerNorm front end),
    exported TorchScript-style with free batch and samples."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        conv_dim=(16, 16, 16), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer", return_dict=False)
    model = transformers.Wav2Vec2Model(cfg).eval()
    x = torch.randn(2, 1000, generator=torch.Generator().manual_seed(1))
    return export_torchscript(model, [x], tmp_path / "m.onnx", ["input_values"],
                              {"input_values": {0: "batch", 1: "samples"}}, {0: "batch", 1: "frames"},
                              ("last_hidden_state",))


HF_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
BATCH_ONLY = [{"batch": 1}, {"batch": 2}, {"batch": 3}]
HF_ROWS = [
    ("bert", _text_model("BertForSequenceClassification", "BertConfig",
                         ["input_ids", "attention_mask", "token_type_ids"], **HF_TEXT), BERT_SIZES),
    ("distilbert", _text_model("DistilBertForSequenceClassification", "DistilBertConfig",
                               ["input_ids", "attention_mask"], dim=32, n_layers=2, n_heads=4,
                               hidden_dim=37), BERT_SIZES),
    ("roberta", _text_model("RobertaForSequenceClassification", "RobertaConfig",
                            ["input_ids", "attention_mask"], **HF_TEXT), BERT_SIZES),
    ("albert", _text_model("AlbertForSequenceClassification", "AlbertConfig",
                           ["input_ids", "attention_mask", "token_type_ids"], embedding_size=16,
                           **HF_TEXT), BERT_SIZES),
    ("vit", _vit, BATCH_ONLY),
    ("wav2vec2", _wav2vec2, AUDIO_SIZES),
]


@pytest.mark.parametrize("name,build,sizes", HF_ROWS, ids=[r[0] for r in HF_ROWS])
def test_transformers_model_runs_at_three_sizes(name, build, sizes, tmp_path):
    path = build(tmp_path)
    check_sizes(path, tmp_path / "out", sizes)


# --- the generated helpers themselves ------------------------------------------------------------

def test_flatten_at_axis_equal_to_rank_keeps_every_row(tmp_path):
    """Flatten(axis=rank) of (b, s) is (b*s, 1) (the attention-mask crash of issue 14)."""
    from onnx import TensorProto, helper

    node = helper.make_node("Flatten", ["x"], ["y"], axis=2)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = tmp_path / "flatten.onnx"
    onnx.save(model, str(path))
    check_sizes(path, tmp_path / "out", [{"b": 1, "s": 8}, {"b": 2, "s": 9}, {"b": 3, "s": 5}])

