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
    "tf": ".tf:export",
    "tflite": ".tflite:export",
}


def target_passes(target: str, options: dict) -> list:
    """Passes a target needs after the user's pipeline (they keep the graph valid ONNX)."""
    if target in ("keras", "tf", "tflite"):
        from ..passes.assign_nhwc import AssignNHWC

        return ["merge-affine-into-batchnorm", AssignNHWC(keep_nchw_io=options.get("keep_nchw_io", False))]
    return []


def get(target: str):
    spec = REGISTRY.get(target)
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown or not yet available target {target!r}; targets: {known}.")
    module_name, func = spec.split(":")
    return getattr(importlib.import_module(module_name, __name__), func)


def export_raw(model: ir.Model, target: str, **options):
    """Export without verification (irbridge.export adds the check). Target passes run on a
    copy, so `model` stays the canonical graph the export is checked against. `options` go to
    the exporter (keras/tf/tflite: keep_nchw_io; tf: preprocess;
    tflite: quantize, calibration, int8_io, allow_flex)."""
    exporter = get(target)
    steps = target_passes(target, options)
    if steps:
        from .. import passes

        model = passes.run(model.clone(), steps)
    return exporter(model, **options)
