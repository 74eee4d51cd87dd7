"""The op registry of the PyTorch exporter, keyed by ONNX op type and since_version.

A converter is `fn(ctx: NodeContext) -> fx.Node | tuple[fx.Node, ...]` registered with
`@converter("Conv")` (or `since=13` when an op's semantics changed at that opset). The
converter chosen for a node is the newest one whose since_version <= the model's opset.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

_REGISTRY: dict[tuple[str, str], list[tuple[int, Callable]]] = {}


class Unsupported(Exception):
    """Raised by a converter for a node whose attributes or inputs it cannot express."""


def converter(op_type: str, since: int = 1, domain: str = ""):
    def decorator(fn):
        versions = _REGISTRY.setdefault((domain, op_type), [])
        bisect.insort(versions, (since, fn), key=lambda v: v[0])
        return fn

    return decorator


def lookup(op_type: str, opset: int, domain: str = "") -> Callable | None:
    _load_ops()
    versions = _REGISTRY.get((domain, op_type), [])
    chosen = None
    for since, fn in versions:
        if since <= opset:
            chosen = fn
    return chosen


def supported() -> dict[str, list[int]]:
    """{op_type: [since_version, ...]} for the coverage table (`irbridge ops`)."""
    _load_ops()
    return {op: [s for s, _ in v] for (dom, op), v in sorted(_REGISTRY.items()) if dom == ""}


def _load_ops() -> None:
    from .ops import (  # noqa: F401  (importing registers the converters)
        activation,
        conv,
        elementwise,
        linear,
        normalization,
        pooling,
        reduce,
        tensor,
    )
