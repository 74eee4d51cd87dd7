"""Keras exporter: ONNX -> a functional keras.Model of real layers, channels-last throughout.

The graph must have been laid out by the assign-nhwc pass (irbridge.export does that). The
model holds only standard Keras layers plus, where ONNX semantics need them, the few layers
of irbridge.keras_layers (LRN, exact padded pooling, constant operands).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import onnx_ir as ir

from ..._io import atomic_path


def export(model: ir.Model, keep_nchw_io: bool = False):
    from .builder import build

    return build(model, keep_nchw_io=keep_nchw_io)


def save(km, path: str | os.PathLike) -> Path:
    """Save as a .keras file, atomically (keras insists the name ends in .keras)."""
    path = Path(path)
    if path.suffix != ".keras":
        from ...errors import InputError

        raise InputError(f"{path}: a Keras model is saved as a .keras file; name the output *.keras")
    with atomic_path(path) as tmp:
        scratch = Path(tempfile.mkdtemp(prefix=".irbridge-keras-", dir=path.parent))
        try:
            km.save(scratch / path.name)
            shutil.move(scratch / path.name, tmp)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path


def info(km) -> dict | None:
    """How a Keras model made by this exporter relates to its ONNX graph (None otherwise)."""
    from .builder import INFO

    try:
        return INFO.get(km)
    except TypeError:
        return None
