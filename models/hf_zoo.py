"""Tiny Hugging Face architectures with seeded random weights, exported the way published
`.onnx` files are made (TorchScript, opset 17, dynamic batch and sequence axes, as optimum does).

`transformers` is a test-only dependency: it is imported when a builder runs, and nothing is
downloaded (every model is built from a small config).

    path = export("t5_encoder", tmp / "t5.onnx")                # float32
    path = export("convnext", tmp / "convnext16.onnx", half=True)
"""

from __future__ import annotations

import os
from collections.abc import Callable

VOCAB = 99
_TEXT = dict(vocab_size=VOCAB, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _t5_encoder(T):
    cfg = T.T5Config(d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, **_TEXT)
    return T.T5EncoderModel(cfg)


def _clip_vision(T):
    return T.CLIPVisionModel(T.CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                                num_attention_heads=4, image_size=32, patch_size=8))


def _deit(T):
    return T.DeiTForImageClassification(T.DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                     intermediate_size=37, image_size=32, patch_size=8,
                                                     num_labels=5))


def _convnext(T):
    return T.ConvNextForImageClassification(T.ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                                             num_labels=5))


def _efficientnet(T):
    return T.EfficientNetForImageClassification(T.EfficientNetConfig(
        image_size=64, width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=320, num_labels=5))


def _resnet(T):
    return T.ResNetForImageClassification(T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32],
                                                         depths=[1, 1, 1, 1], num_labels=5))


def _whisper_encoder(T):
    cfg = T.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
                          decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, num_mel_bins=16,
                          max_source_positions=50, decoder_start_token_id=1, **_TEXT)
    return T.WhisperModel(cfg).get_encoder()


# name -> (builder, inputs: [(name, example shape, "ids" | "mask" | "float")], free axes per input)
ARCHITECTURES: dict[str, tuple[Callable, list, dict]] = {
    "t5_encoder": (_t5_encoder, [("input_ids", (2, 8), "ids"), ("attention_mask", (2, 8), "mask")],
                   {0: "batch", 1: "sequence"}),
    "clip_vision": (_clip_vision, [("pixel_values", (2, 3, 32, 32), "float")], {0: "batch"}),
    "deit": (_deit, [("pixel_values", (2, 3, 32, 32), "float")], {0: "batch"}),
    "convnext": (_convnext, [("pixel_values", (2, 3, 64, 64), "float")], {0: "batch"}),
    "efficientnet": (_efficientnet, [("pixel_values", (2, 3, 64, 64), "float")], {0: "batch"}),
    "resnet": (_resnet, [("pixel_values", (2, 3, 64, 64), "float")], {0: "batch"}),
    "whisper_encoder": (_whisper_encoder, [("input_features", (2, 16, 100), "float")], {0: "batch"}),
}


def build(name: str, seed: int = 0):
    """The module in eval mode, weights drawn from `seed`."""
    import torch
    import transformers

    torch.manual_seed(seed)
    return redraw(ARCHITECTURES[name][0](transformers).eval(), seed)


def redraw(model, seed: int = 0):
    """Every parameter and statistic of `model` drawn again from `seed` at a realistic scale.

    transformers initialises some layers to zero (classifier heads, the last norm of a residual
    branch), and a model whose output is 0 for every input is a check that cannot fail:
    matrices ~ N(0, 1/fan_in), norm scales ~ U(0.5, 1.5), biases and running means ~ N(0, 0.1),
    running variances ~ U(0.5, 1.5)."""
    import torch

    g = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if t.dim() >= 2:
                fan_in = max(1, t[0].numel())
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5)
            elif "var" in leaf or ("weight" in leaf and t.dim() == 1) or leaf in ("gamma", "lambda1", "lambda2"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model


def example_inputs(name: str, half: bool = False, seed: int = 0) -> tuple:
    return seeded_inputs(ARCHITECTURES[name][1], half, seed)


def seeded_inputs(specs, half: bool = False, seed: int = 0) -> tuple:
    """Tensors for [(name, shape, kind)]: token ids in [3, VOCAB), all-ones masks, normal floats."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _, shape, kind in specs:
        if kind == "ids":
            out.append(torch.randint(3, VOCAB, shape, generator=g))
        elif kind == "mask":
            out.append(torch.ones(shape, dtype=torch.long))
        else:
            x = torch.randn(shape, generator=g)
            out.append(x.half() if half else x)
    return tuple(out)


def export(name: str, path: str | os.PathLike, half: bool = False, seed: int = 0) -> str:
    """Write `name` as a TorchScript opset-17 .onnx file with dynamic axes (float16 with `half`)."""
    import contextlib
    import io
    import warnings

    import torch

    model = build(name, seed)
    if half:
        model = model.half()
    _, inputs, axes = ARCHITECTURES[name]
    names = [n for n, _, _ in inputs]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example_inputs(name, half, seed), os.fspath(path), input_names=names,
                          dynamic_axes={n: axes for n in names}, opset_version=17, dynamo=False)
    return os.fspath(path)
