"""ONNX exporter: the canonical graph itself, saved as a .onnx file."""

from __future__ import annotations

import os
from pathlib import Path

import onnx_ir as ir

from .._io import atomic_path

# Weights past this size go to an external data file beside the .onnx (protobuf's 2 GB cap).
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3 - 64 * 1024**2


def export(model: ir.Model) -> ir.Model:
    return model


def save_onnx(model: ir.Model, path: str | os.PathLike) -> Path:
    """Write `model` atomically; weights over 2 GB go to `<name>.data` beside it."""
    path = Path(path)
    total = sum(
        (v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None),
        0,
    )
    with atomic_path(path) as tmp:
        if total > EXTERNAL_DATA_THRESHOLD:
            ir.save(model, tmp, external_data=path.name + ".data")
        else:
            ir.save(model, tmp)
    return path
