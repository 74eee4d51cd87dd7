"""Op registries of the exporters, keyed by ONNX op type and since_version.

A converter is registered with `@registry.converter("Conv")` (or `since=13` when an op's
semantics changed at that opset); the one chosen for a node is the newest whose
since_version <= the model's opset. Converter modules are imported on first lookup.
"""

from __future__ import annotations

import bisect
import importlib
from collections.abc import Callable, Sequence


class Unsupported(Exception):
    """Raised by a converter for a node whose attributes or inputs it cannot express."""


class OpRegistry:
    def __init__(self, package: str, modules: Sequence[str]):
        self._package = package
        self._modules = list(modules)
        self._loaded = False
        self._ops: dict[tuple[str, str], list[tuple[int, Callable]]] = {}

    def converter(self, op_type: str, since: int = 1, domain: str = ""):
        def decorator(fn):
            bisect.insort(self._ops.setdefault((domain, op_type), []), (since, fn), key=lambda v: v[0])
            return fn

        return decorator

    def lookup(self, op_type: str, opset: int, domain: str = "") -> Callable | None:
        self._load()
        chosen = None
        for since, fn in self._ops.get((domain, op_type), []):
            if since <= opset:
                chosen = fn
        return chosen

    def supported(self) -> dict[str, list[int]]:
        """{op_type: [since_version, ...]} for the coverage table (`irbridge ops`)."""
        self._load()
        return {op: [s for s, _ in v] for (dom, op), v in sorted(self._ops.items()) if dom == ""}

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for m in self._modules:  # importing a module registers its converters
                importlib.import_module(f"{self._package}.{m}")
