"""TFLite (LiteRT) exporter: the TF exporter's module converted by TF's own converter.

`export(model)` returns a `TFLiteModel`: the flatbuffer bytes, plus what verify needs to run it
against the canonical graph (`irbridge_tflite`: interface layouts, layer tensors, notes).
Builtin ops only unless `allow_flex`; `quantize` in {None, "float16", "dynamic-int8", "int8"}
("int8" needs `calibration`: an .npz of arrays by input name, a folder of images, or
{name: array}; `int8_io` makes the interfaces int8 too).
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx_ir as ir

from ..._io import atomic_path
from ...verify.runners import register_runner
from . import runner as _runner

register_runner(_runner.accepts, _runner.tflite_runner)  # verify runs what this exporter makes

QUANTIZE = (None, "float16", "dynamic-int8", "int8")


class TFLiteModel(bytes):
    """A .tflite flatbuffer (it *is* the bytes) with irbridge's notes on it in `irbridge_tflite`."""

    irbridge_tflite: dict


def export(model: ir.Model, keep_nchw_io: bool = False, quantize: str | None = None, calibration=None,
           int8_io: bool = False, allow_flex: bool = False) -> TFLiteModel:
    from ...errors import InputError
    from ..tf import export as export_tf
    from .convert import convert

    if quantize not in QUANTIZE:
        raise InputError(f"--quantize {quantize}: choose from float16, dynamic-int8, int8")
    if int8_io and quantize != "int8":
        raise InputError("--int8-io needs --quantize int8")
    if quantize == "int8" and calibration is None:
        raise InputError("--quantize int8 needs calibration data: --calibration FILE.npz (arrays by input "
                         "name, samples on the first axis) or --calibration DIR (images)")
    module = export_tf(model, keep_nchw_io=keep_nchw_io)
    flat, meta = convert(module, model, quantize=quantize, calibration=calibration, int8_io=int8_io,
                         allow_flex=allow_flex)
    out = TFLiteModel(flat)
    out.irbridge_tflite = meta
    return out


def save(flat: bytes, path: str | os.PathLike) -> Path:
    """Write the .tflite file atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(bytes(flat))
    return path
