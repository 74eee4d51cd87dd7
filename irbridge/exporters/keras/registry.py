"""The op registry of the Keras exporter (see irbridge.exporters._registry).

A converter is `fn(ctx: KerasContext) -> keras tensor | tuple of them`, held in the layout
the assign-nhwc pass gave the node's outputs.
"""

from __future__ import annotations

from .._registry import OpRegistry, Unsupported

REGISTRY = OpRegistry("irbridge.exporters.keras.ops", ["conv", "pooling", "resize", "dense", "embedding", "norm", "activation", "math", "tensor", "recurrent", "scatter"])
converter = REGISTRY.converter
lookup = REGISTRY.lookup
supported = REGISTRY.supported

__all__ = ["Unsupported", "converter", "lookup", "supported"]
