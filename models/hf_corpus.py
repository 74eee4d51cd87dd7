"""The independent set of real-world exports: 25 architectures, each written the two ways published
`.onnx` files are made, plus float16 exports of six of them.

- ``torchscript``: ``torch.onnx.export(..., dynamo=False)``, opset 17, ``dynamic_axes`` on batch (and
  sequence for text and audio), as optimum writes them;
- ``dynamo``: ``torch.onnx.export(..., dynamo=True)``, opset 20, ``dynamic_shapes`` on the same axes.

Every model is a small configuration with seeded random weights (``transformers`` is a test-only
dependency, nothing is downloaded). The files feed ``irbridge sweep``:

    python -m irbridge.models.hf_corpus build/corpus   # 53 files: torch.onnx cannot write BEiT, Swin, T5 with dynamo
    irbridge sweep build/corpus --to torch,keras,tf --json --report build/corpus.html
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Callable

from irbridge.models import hf_zoo

VOCAB = hf_zoo.VOCAB
_TEXT = dict(vocab_size=VOCAB, pad_token_id=0)
_ENC = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
_VIS = dict(_ENC, image_size=32, patch_size=8)


def _first_output(model, names):
    """Wrap a transformers model so it takes positional inputs and returns its first output tensor."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, *xs):
            out = self.m(**dict(zip(names, xs)))
            return out[0] if isinstance(out, tuple) else next(iter(out.values()))

    return Wrapped().eval()


def _hf(cls: str, cfg: str, **kw) -> Callable:
    return lambda T: getattr(T, cls)(getattr(T, cfg)(**kw))


def _rnn(kind: str) -> Callable:
    def build(T):
        import torch

        class Tagger(torch.nn.Module):
            """An embedding, a two-layer bidirectional recurrent encoder and a per-step classifier."""

            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(VOCAB, 16)
                self.rnn = getattr(torch.nn, kind)(16, 24, num_layers=2, batch_first=True, bidirectional=True)
                self.head = torch.nn.Linear(48, 5)

            def forward(self, input_ids):
                return self.head(self.rnn(self.embed(input_ids))[0])

        return Tagger()

    return build


IMG = [("pixel_values", (2, 3, 32, 32), "float")]
IMG64 = [("pixel_values", (2, 3, 64, 64), "float")]
IDS = [("input_ids", (2, 8), "ids")]
IDS_MASK = IDS + [("attention_mask", (2, 8), "mask")]
AUDIO = [("input_values", (2, 400), "float")]

# name -> (builder(transformers), inputs [(name, example shape, kind)], free axes of every input)
ARCHITECTURES: dict[str, tuple[Callable, list, dict]] = {
    # vision
    "vit": (_hf("ViTForImageClassification", "ViTConfig", num_labels=5, **_VIS), IMG, {0: "batch"}),
    "deit": (hf_zoo._deit, IMG, {0: "batch"}),
    "beit": (_hf("BeitForImageClassification", "BeitConfig", num_labels=5, use_relative_position_bias=True, **_VIS),
             IMG, {0: "batch"}),
    "dinov2": (_hf("Dinov2Model", "Dinov2Config", **_VIS), IMG, {0: "batch"}),
    "clip_vision": (hf_zoo._clip_vision, IMG, {0: "batch"}),
    "convnext": (hf_zoo._convnext, IMG64, {0: "batch"}),
    "swin": (_hf("SwinForImageClassification", "SwinConfig", image_size=32, patch_size=4, embed_dim=16,
                 depths=[1, 1], num_heads=[2, 4], window_size=4, num_labels=5), IMG, {0: "batch"}),
    "mobilevit": (_hf("MobileViTForImageClassification", "MobileViTConfig", image_size=64, hidden_sizes=[16, 24, 32],
                      neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 48], num_labels=5), IMG64, {0: "batch"}),
    "segformer": (_hf("SegformerForSemanticSegmentation", "SegformerConfig", num_encoder_blocks=2, depths=[1, 1],
                      sr_ratios=[2, 1], hidden_sizes=[16, 32], num_attention_heads=[1, 2], decoder_hidden_size=32,
                      num_labels=5), IMG64, {0: "batch"}),
    "efficientnet": (hf_zoo._efficientnet, IMG64, {0: "batch"}),
    "mobilenet_v2": (_hf("MobileNetV2ForImageClassification", "MobileNetV2Config", image_size=64, depth_multiplier=0.35,
                         num_labels=5), IMG64, {0: "batch"}),
    "resnet": (hf_zoo._resnet, IMG64, {0: "batch"}),
    "regnet": (_hf("RegNetForImageClassification", "RegNetConfig", embedding_size=8, hidden_sizes=[8, 16, 24, 32],
                   depths=[1, 1, 1, 1], groups_width=8, num_labels=5), IMG64, {0: "batch"}),
    # text
    "bert": (_hf("BertModel", "BertConfig", max_position_embeddings=64, **_ENC, **_TEXT), IDS_MASK,
             {0: "batch", 1: "sequence"}),
    "distilbert": (_hf("DistilBertModel", "DistilBertConfig", max_position_embeddings=64, dim=32, n_layers=2,
                       n_heads=4, hidden_dim=37, **_TEXT), IDS_MASK, {0: "batch", 1: "sequence"}),
    "roberta": (_hf("RobertaModel", "RobertaConfig", max_position_embeddings=70, **_ENC, **_TEXT), IDS_MASK,
                {0: "batch", 1: "sequence"}),
    "albert": (_hf("AlbertModel", "AlbertConfig", max_position_embeddings=64, embedding_size=16, **_ENC, **_TEXT),
               IDS_MASK, {0: "batch", 1: "sequence"}),
    "gpt2": (_hf("GPT2LMHeadModel", "GPT2Config", n_positions=64, n_embd=32, n_layer=2, n_head=4, use_cache=False,
                 vocab_size=VOCAB, bos_token_id=1, eos_token_id=2), IDS_MASK, {0: "batch", 1: "sequence"}),
    "llama": (_hf("LlamaForCausalLM", "LlamaConfig", max_position_embeddings=64, num_key_value_heads=2,
                  use_cache=False, **_ENC, **_TEXT), IDS_MASK, {0: "batch", 1: "sequence"}),
    "qwen2": (_hf("Qwen2ForCausalLM", "Qwen2Config", max_position_embeddings=64, num_key_value_heads=2,
                  use_cache=False, **_ENC, **_TEXT), IDS_MASK, {0: "batch", 1: "sequence"}),
    "t5_encoder": (hf_zoo._t5_encoder, IDS_MASK, {0: "batch", 1: "sequence"}),
    # audio
    "wav2vec2": (_hf("Wav2Vec2Model", "Wav2Vec2Config", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4), AUDIO, {0: "batch", 1: "sequence"}),
    "whisper_encoder": (hf_zoo._whisper_encoder, [("input_features", (2, 16, 100), "float")], {0: "batch"}),
    # recurrent
    "lstm": (_rnn("LSTM"), IDS, {0: "batch", 1: "sequence"}),
    "gru": (_rnn("GRU"), IDS, {0: "batch", 1: "sequence"}),
}

# the float16 exports: TorchScript style, but dynamo for the text models, whose TorchScript
# float16 export is not valid ONNX (LayerNormalization gets a float32 scale beside float16 data)
HALF = {"vit": "torchscript", "convnext": "torchscript", "bert": "dynamo", "gpt2": "dynamo",
        "whisper_encoder": "torchscript", "resnet": "torchscript"}


def build(name: str, seed: int = 0):
    """The module in eval mode (positional inputs, first output), weights drawn from `seed`."""
    import torch
    import transformers

    torch.manual_seed(seed)
    builder, inputs, _ = ARCHITECTURES[name]
    model = hf_zoo.redraw(builder(transformers).eval(), seed)
    if name in ("lstm", "gru"):
        return model
    return _first_output(model, [n for n, _, _ in inputs])


def example_inputs(name: str, half: bool = False, seed: int = 0) -> tuple:
    """Seeded example inputs: token ids in [3, VOCAB), all-ones masks, normal floats."""
    return hf_zoo.seeded_inputs(ARCHITECTURES[name][1], half, seed)


def export(name: str, path: str | os.PathLike, style: str = "torchscript", half: bool = False, seed: int = 0) -> str:
    """Write `name` as an .onnx file made the `style` way ("torchscript" or "dynamo")."""
    import torch

    model = build(name, seed)
    if half:
        model = model.half()
    _, inputs, axes = ARCHITECTURES[name]
    names = [n for n, _, _ in inputs]
    args = example_inputs(name, half, seed)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        if style == "torchscript":
            torch.onnx.export(model, args, os.fspath(path), input_names=names, output_names=["output"],
                              dynamic_axes={n: axes for n in names}, opset_version=17, dynamo=False)
        else:
            bounds = {"sequence": (400, 16000) if name == "wav2vec2" else (2, 64)}  # audio: samples
            dims = {k: torch.export.Dim(v, **dict(zip(("min", "max"), bounds.get(v, ()))))
                    for k, v in axes.items()}
            torch.onnx.export(model, args, os.fspath(path), input_names=names, output_names=["output"],
                              dynamo=True, opset_version=20, dynamic_shapes={"xs": tuple(dims for _ in names)}
                              if name not in ("lstm", "gru") else {"input_ids": dims})
    return os.fspath(path)


def write_corpus(directory: str | os.PathLike, names=None, styles=("torchscript", "dynamo"), half=True) -> list[str]:
    """Write every architecture in every style (and the float16 set) to `directory`.

    A model the exporter itself cannot write is reported on stderr and left out, not hidden."""
    os.makedirs(directory, exist_ok=True)
    written = []
    jobs = [(n, s, False) for n in (names or ARCHITECTURES) for s in styles]
    if half:
        jobs += [(n, s, True) for n, s in HALF.items() if names is None or n in names]
    for n, s, h in jobs:
        path = os.path.join(directory, f"{n}-{s}{'-fp16' if h else ''}.onnx")
        try:
            written.append(export(n, path, s, h))
        except Exception as exc:  # noqa: BLE001 - a source the exporter cannot write is reported, not fatal
            print(f"{os.path.basename(path)}: torch.onnx.export failed: {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:200]}", file=sys.stderr)
    return written


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "build/corpus"
    files = write_corpus(out, sys.argv[2:] or None)
    print(f"wrote {len(files)} files to {out}")
