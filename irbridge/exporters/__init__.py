"""Exporters: each turns a canonical ONNX graph into a real model of one target framework.

Registered by target name as "module:function" so that importing irbridge never imports a
framework. An exporter is `(model: ir.Model) -> object`.
"""

from __future__ import annotations

import importlib

import onnx_ir as ir

from ..errors import InputError

REGISTRY: dict[str, str] = {
    "onnx": ".onnx:export",
    "torch": ".torch:export",
    "keras": ".keras:export",
}

# Passes a target needs after the user's pipeline (they keep the graph valid ONNX).
TARGET_PASSES: dict[str, list[str]] = {
    "keras": ["merge-affine-into-batchnorm", "assign-nhwc"],
}


def get(target: str):
    spec = REGISTRY.get(target)
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown or not yet available target {target!r}; targets: {known}.")
    module_name, func = spec.split(":")
    return getattr(importlib.import_module(module_name, __name__), func)


def export_raw(model: ir.Model, target: str):
    """Export without verification (irbridge.export adds the check). Target passes run on a
    copy, so `model` stays the canonical graph the export is checked against."""
    exporter = get(target)
    if TARGET_PASSES.get(target):
        from .. import passes

        model = passes.run(model.clone(), TARGET_PASSES[target])
    return exporter(model)
