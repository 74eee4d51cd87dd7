"""Importers: each lifts one source format literally into an onnx_ir.Model.

An importer is a function `(source, weights, inputs) -> ir.Model` registered here by format
name as "module:function", so that importing irbridge never imports a framework. An importer
that can free more dims takes a `dynamic` keyword too ({name: {axis: label}}, `dynamic_spec`);
`load` refuses `dynamic=` for the others.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os

import onnx_ir as ir
from onnx_ir.passes import common

from .. import formats, provenance
from ..errors import InputError, UnsupportedError

CANONICAL_OPSET = 18
MIN_IR_VERSION = 8  # opset 18 needs IR 8; IR >= 4 lets initializers stay out of the inputs

# format name -> "module:function" (relative to this package)
REGISTRY: dict[str, str] = {
    "onnx": ".onnx_model:load",
    "torch": ".pytorch:load",
    "keras": ".keras_model:load",
    "keras-h5": ".keras_h5:load",
    "caffe": ".caffe:load",
    "tf": ".tf_graph:load",
    "tf-savedmodel": ".tf_graph:load",
    "tf-graphdef": ".tf_graph:load",
}

_NOT_YET = {
    "torch-file": "a .pt/.pth file holds pickled Python objects, which irbridge never unpickles by default; "
    "build the module in Python and pass it to irbridge.load(module, inputs=...), or pass "
    "--trust-pickle (trust_pickle=True) if you trust this file (unpickling runs code from it)",
}


def load(source, weights=None, *, format: str | None = None, inputs=None, dynamic=None,
         trust_code: bool = False, trust_pickle: bool = False) -> ir.Model:
    """Load any supported source into an ONNX graph (onnx_ir.Model), literally.

    The result is at opset 18 or newer and carries provenance metadata (DESIGN.md §3).
    `dynamic`: {name: {axis: label}} axes that stay free, for importers that trace (PyTorch:
    the batch is free by default); see `dynamic_spec`.
    `trust_pickle`: unpickle a whole-module .pt file (runs code from the file).
    """
    fmt = format or formats.detect(source)
    if fmt == "torch-file" and trust_pickle:
        return load(_unpickled_module(source), inputs=inputs, dynamic=dynamic)
    target = REGISTRY.get(fmt)
    if target is None:
        where = f"{os.fspath(source)}: " if isinstance(source, (str, os.PathLike)) else ""
        why = _NOT_YET.get(fmt, f"no importer for the {fmt!r} format in this version of irbridge")
        known = ", ".join(sorted(REGISTRY))
        raise UnsupportedError(f"{where}{why} (formats it reads: {known}).")
    module_name, func = target.split(":")
    importer = getattr(importlib.import_module(module_name, __name__), func)
    if trust_code and fmt != "keras":
        raise InputError(f"trust_code applies to Keras models only, not to {fmt!r} sources")
    options = {"trust_code": True} if trust_code else {}
    if dynamic:  # None, {} and [] (no --dynamic) ask for nothing
        if "dynamic" not in inspect.signature(importer).parameters:
            raise InputError(
                f"dynamic= (--dynamic) applies to PyTorch sources; this {fmt!r} source keeps the free "
                "dims it has (ONNX dim_params, Keras/TF None dims); --input NAME:D1,... / inputs= fix them."
            )
        options["dynamic"] = dynamic
    model = importer(source, weights, inputs, **options)
    return finish(model, fmt)


def _unpickled_module(path):
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=False)  # the user trusts this file
    if not isinstance(obj, torch.nn.Module):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not a torch.nn.Module; a state_dict binds "
                         "onto an architecture with `irbridge bind`.")
    return obj


def finish(model: ir.Model, fmt: str) -> ir.Model:
    """What every importer's result gets: opset >= 18, provenance, the source format."""
    opset = model.opset_imports.get("", None)
    if opset is None:
        raise InputError("the model imports no default-domain ONNX opset; it is not a valid ONNX model.")
    model.metadata_props[provenance.SOURCE_OPSET] = str(opset)
    # Old files list initializers as graph inputs too (IR < 4); they are weights, not inputs.
    common.RemoveInitializersFromInputsPass()(model)
    model.ir_version = max(model.ir_version or 0, MIN_IR_VERSION)
    if opset < CANONICAL_OPSET:
        upgrade_opset(model, CANONICAL_OPSET)
    provenance.fill_defaults(model.graph)
    model.metadata_props[provenance.SOURCE_FORMAT] = fmt
    return model


def upgrade_opset(model: ir.Model, target: int) -> None:
    """Version-convert `model` in place to `target` (onnx's converter where onnxscript has none)."""
    from onnxscript import version_converter

    logger = logging.getLogger("onnxscript.version_converter")
    level = logger.level
    logger.setLevel(logging.ERROR)  # it warns when it falls back to onnx's converter
    try:
        version_converter.convert_version(model, target, fallback=True)
    except Exception as e:  # the converters raise many types
        raise UnsupportedError(
            f"cannot convert the model from opset {model.opset_imports.get('')} to {target}: {e}"
        ) from e
    finally:
        logger.setLevel(level)
