"""Keras exporter: ONNX -> a functional keras.Model of real layers, channels-last throughout.

The graph must have been laid out by the assign-nhwc pass (irbridge.export does that). The
model holds only standard Keras layers plus, where ONNX semantics need them, the few layers
of irbridge.keras_layers (LRN, exact padded pooling, constant operands).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter is not the user's business
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import onnx_ir as ir  # noqa: E402

from ..._io import atomic_path, scratch_dir  # noqa: E402
from ...verify.runners import register_runner  # noqa: E402
from . import runner as _runner  # noqa: E402

register_runner(_runner.accepts, _runner.runner)  # verify runs what this exporter makes


def export(model: ir.Model, keep_nchw_io: bool = False, trainable: bool = True):
    """The keras.Model; `trainable=False` creates every layer frozen (the TF exporter's use)."""
    from .builder import build

    return build(model, keep_nchw_io=keep_nchw_io, trainable=trainable)


def save(km, path: str | os.PathLike) -> Path:
    """Save as a .keras file, atomically (keras insists the name ends in .keras)."""
    path = Path(path)
    if path.suffix != ".keras":
        from ...errors import InputError

        raise InputError(f"{path}: a Keras model is saved as a .keras file; name the output *.keras")
    with atomic_path(path) as tmp:
        scratch = scratch_dir(path.parent)
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
