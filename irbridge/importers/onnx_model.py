"""ONNX importer: .onnx files, onnx.ModelProto and onnx_ir.Model."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import onnx_ir as ir

from ..errors import InputError


def load(source, weights=None, inputs=None) -> ir.Model:
    if weights is not None:
        raise InputError("an ONNX model holds its own weights; drop the WEIGHTS argument.")
    if isinstance(source, ir.Model):
        # A structural clone keeps the caller's model untouched; tensors are shared, not
        # copied, since passes replace initializers rather than write into them.
        return source.clone()
    if isinstance(source, onnx.ModelProto):
        return ir.serde.deserialize_model(source)
    return _load_file(Path(os.fspath(source)))


def _load_file(path: Path) -> ir.Model:
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise InputError(
            f"{path}: not a readable ONNX model ({type(e).__name__}: {e}). "
            "The file may be truncated or of another format; re-export or re-download it."
        ) from e
    if not proto.graph.node and not proto.graph.output:
        raise InputError(f"{path}: parsed as ONNX but holds an empty graph; it is not a usable model.")
    _check_external_data(proto, path)
    model = ir.serde.deserialize_model(proto)
    _attach_external_data(model, path.parent)
    return model


def _check_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """External data must stay inside the model's directory (DESIGN.md §7)."""
    base = path.parent.resolve()
    for tensor in onnx.external_data_helper._get_all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (base / location).resolve()
        if os.path.isabs(location) or not target.is_relative_to(base):
            raise InputError(
                f"{path}: initializer {tensor.name!r} points its external data outside the "
                f"model's directory ({location!r}); refusing to read it.",
                nodes=[tensor.name],
            )
        if not target.is_file():
            raise InputError(
                f"{path}: initializer {tensor.name!r} needs external data file {location!r}, "
                "which is missing; keep it beside the .onnx file.",
                nodes=[tensor.name],
            )


def _attach_external_data(model: ir.Model, base_dir: Path) -> None:
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if isinstance(tensor, ir.ExternalTensor):
            tensor.base_dir = str(base_dir)
