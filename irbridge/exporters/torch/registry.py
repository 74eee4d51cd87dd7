"""The op registry of the PyTorch exporter (see irbridge.exporters._registry).

A converter is `fn(ctx: NodeContext) -> fx.Node | tuple[fx.Node, ...]`.
"""

from __future__ import annotations

from .._registry import OpRegistry, Unsupported

REGISTRY = OpRegistry(
    "irbridge.exporters.torch.ops",
    ["activation", "conv", "elementwise", "linear", "normalization", "pooling", "reduce", "tensor",
     "indexing", "resize", "recurrent", "attention", "quantize", "controlflow", "sampling", "loss", "spectral", "detection"],
)
converter = REGISTRY.converter
lookup = REGISTRY.lookup
supported = REGISTRY.supported

__all__ = ["Unsupported", "converter", "lookup", "supported"]
