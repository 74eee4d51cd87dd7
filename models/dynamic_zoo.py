"""Small transformer and audio networks with free (dynamic) dims, written in plain torch.

Each builder returns an eval-mode module with deterministic random weights (`torch_zoo.seeded`);
`export_onnx` writes one as an `.onnx` file the way Hugging Face optimum and most published
files are made: TorchScript export (`dynamo=False`), opset 17, dynamic batch and
sequence/samples axes, optionally in float16.

- `bert`: token/position/type embeddings, attention mask, LayerNorm, erf GELU, multi-head
  attention, pooler and classifier (inputs `input_ids`, `attention_mask`, `token_type_ids`).
- `vit`: patch-embedding conv, cls token, position embedding, pre-norm blocks (`pixel_values`).
- `audio`: wav2vec2-like: raw samples (batch, samples) -> strided Conv1d stack with GroupNorm
  and LayerNorm, GELU, projection (`input_values`; needs at least `AUDIO_MIN_SAMPLES`).
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from .torch_zoo import seeded

HIDDEN, HEADS, LAYERS, VOCAB, MAX_POSITIONS = 32, 4, 2, 99, 64
AUDIO_KERNELS, AUDIO_STRIDES = (10, 3, 3), (5, 2, 2)
AUDIO_MIN_SAMPLES = 400  # the conv stack needs this many samples for one output frame


class Attention(nn.Module):
    """Multi-head self-attention; `bias` is added to the scores (0 keeps, -inf-ish masks)."""

    def __init__(self, hidden: int = HIDDEN, heads: int = HEADS):
        super().__init__()
        self.heads, self.scale = heads, 1 / math.sqrt(hidden // heads)
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x, bias=None):
        b, s, h = x.shape
        split = (b, s, self.heads, h // self.heads)
        q, k, v = (f(x).view(split).transpose(1, 2) for f in (self.query, self.key, self.value))
        scores = q @ k.transpose(-1, -2) * self.scale
        if bias is not None:
            scores = scores + bias
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, h)
        return self.out(y)


class EncoderLayer(nn.Module):
    """Transformer block; `pre_norm` for ViT (norm before), post-norm for BERT (norm after)."""

    def __init__(self, hidden: int = HIDDEN, pre_norm: bool = False):
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = Attention(hidden)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))

    def forward(self, x, bias=None):
        if self.pre_norm:
            x = x + self.attention(self.norm1(x), bias)
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attention(x, bias))
        return self.norm2(x + self.mlp(x))


class Bert(nn.Module):
    """BERT-style sequence classifier."""

    def __init__(self, num_labels: int = 3):
        super().__init__()
        self.word = nn.Embedding(VOCAB, HIDDEN)
        self.position = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type = nn.Embedding(2, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.pooler = nn.Linear(HIDDEN, HIDDEN)
        self.classifier = nn.Linear(HIDDEN, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.position(positions) + self.token_type(token_type_ids)
        x = self.norm(x)
        # (batch, seq) 0/1 -> (batch, 1, 1, seq) additive bias, in the model's dtype
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


class ViT(nn.Module):
    """ViT-style image classifier; any image size that is a multiple of `patch` up to
    `max_patches` patches (the position table is interpolated by slicing)."""

    def __init__(self, channels: int = 3, patch: int = 4, max_patches: int = 64, num_labels: int = 5):
        super().__init__()
        self.patch = nn.Conv2d(channels, HIDDEN, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, HIDDEN))
        self.position = nn.Parameter(torch.zeros(1, max_patches + 1, HIDDEN))
        self.layers = nn.ModuleList(EncoderLayer(pre_norm=True) for _ in range(LAYERS))
        self.norm = nn.LayerNorm(HIDDEN)
        self.head = nn.Linear(HIDDEN, num_labels)

    def forward(self, pixel_values):
        x = self.patch(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.position[:, : x.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x)[:, 0])


class AudioFrontEnd(nn.Module):
    """wav2vec2-like feature encoder: (batch, samples) -> (batch, frames, HIDDEN)."""

    def __init__(self, channels: int = 16):
        super().__init__()
        convs = []
        for i, (k, s) in enumerate(zip(AUDIO_KERNELS, AUDIO_STRIDES)):
            convs.append(nn.Conv1d(1 if i == 0 else channels, channels, k, stride=s, bias=False))
            convs.append(nn.GroupNorm(channels, channels) if i == 0 else nn.Identity())
            convs.append(nn.GELU())
        self.convs = nn.Sequential(*convs)
        self.norm = nn.LayerNorm(channels)
        self.projection = nn.Linear(channels, HIDDEN)

    def forward(self, input_values):
        x = self.convs(input_values[:, None])  # (batch, channels, frames)
        return self.projection(self.norm(x.transpose(1, 2)))


def bert(seed: int = 0) -> nn.Module:
    return seeded(Bert(), seed)


def vit(seed: int = 0) -> nn.Module:
    return seeded(ViT(), seed)


def audio(seed: int = 0) -> nn.Module:
    return seeded(AudioFrontEnd(), seed)


# name -> (builder, {input: (example shape, dtype kind, {axis: label})}, output's free axes)
ZOO = {
    "bert": (bert, {"input_ids": ((2, 8), "ids", {0: "batch", 1: "sequence"}),
                    "attention_mask": ((2, 8), "mask", {0: "batch", 1: "sequence"}),
                    "token_type_ids": ((2, 8), "types", {0: "batch", 1: "sequence"})},
             {0: "batch"}),
    "vit": (vit, {"pixel_values": ((2, 3, 16, 16), "float", {0: "batch", 2: "height", 3: "width"})},
            {0: "batch"}),
    "audio": (audio, {"input_values": ((2, 1000), "float", {0: "batch", 1: "samples"})},
              {0: "batch", 1: "frames"}),
}


def example_inputs(name: str, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    """Seeded example inputs of the shapes in ZOO (used only to trace the export)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for shape, kind, _ in ZOO[name][1].values():
        if kind == "float":
            out.append(torch.randn(shape, generator=g).to(dtype))
        else:
            high = {"ids": VOCAB, "mask": 2, "types": 2}[kind]
            out.append(torch.randint(0, high, shape, generator=g))
    return tuple(out)


def export_onnx(name: str, path: str | os.PathLike, half: bool = False, seed: int = 0) -> str:
    """Write zoo model `name` as ONNX (TorchScript, opset 17, dynamic axes); `half`: float16
    weights and float inputs (model.half() before export). Returns the path."""
    model = ZOO[name][0](seed)
    dtype = torch.float32
    if half:
        model, dtype = model.half(), torch.float16
    _, specs, out_axes = ZOO[name]
    torch.onnx.export(
        model, example_inputs(name, dtype), str(path), dynamo=False, opset_version=17,
        input_names=list(specs), output_names=["output"],
        dynamic_axes={**{n: axes for n, (_, _, axes) in specs.items()}, "output": out_axes},
    )
    return str(path)
