"""ONNX importer: .onnx files, onnx.ModelProto and onnx_ir.Model."""

from __future__ import annotations

import os
import re
from pathlib import Path

import onnx
import onnx_ir as ir

from ..errors import InputError
from .onnx_file import MappedWeight, nbytes, read_onnx


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
    """The file's large inline weights stay in the file, mapped (see onnx_file)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    proto, mapped = read_onnx(path)
    if not proto.graph.node and not proto.graph.output:
        raise InputError(f"{path}: parsed as ONNX but holds an empty graph; it is not a usable model.")
    _check_external_data(proto, path, mapped)
    try:
        model = ir.serde.deserialize_model(proto)
    except Exception as e:  # noqa: BLE001 - onnx_ir refuses damaged protos with many error types
        cause = e.__cause__ or e
        where = re.search(r'name: "([^"]*)"', str(e))
        node = f" (node {where.group(1)!r})" if where else ""
        raise InputError(f"{path}: not a usable ONNX model{node}: {type(cause).__name__}: "
                         f"{str(cause).splitlines()[0] if str(cause) else ''}",
                         nodes=[where.group(1)] if where else []) from e
    _attach_external_data(model, path.parent)
    return model


def _check_external_data(proto: onnx.ModelProto, path: Path, mapped: set[MappedWeight] = frozenset()) -> None:
    """External data must stay inside the model's directory (DESIGN.md §7): no absolute paths,
    no `..`, no symlinks or hardlinks, offsets and lengths inside the file and equal to the
    tensor's size. Inline tensors must hold as many bytes as their dims declare. `mapped`:
    the file's own inline weights, which refer to their place in it (checked when read)."""
    base = path.parent.resolve()
    for tensor in onnx.external_data_helper._get_all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            _check_inline(tensor, path)
            continue
        info = {e.key: e.value for e in tensor.external_data}
        if _is_mapped(tensor, info, mapped):
            continue
        location = info.get("location", "")
        refuse = _refusal(base, location, info, tensor)
        if refuse:
            raise InputError(f"{path}: initializer {tensor.name!r}: {refuse}; refusing to read it.",
                             nodes=[tensor.name])


def _is_mapped(tensor, info: dict, mapped: set[MappedWeight]) -> bool:
    try:
        where = MappedWeight(info.get("location", ""), tensor.name, int(info.get("offset", -1)),
                             int(info.get("length", -1)))
    except ValueError:
        return False
    return where in mapped


def _refusal(base: Path, location: str, info: dict, tensor) -> str | None:
    """Why the external data of `tensor` may not be read, or None."""
    raw = base / location
    if not location or os.path.isabs(location) or ".." in Path(location).parts:
        return f"its external data location {location!r} is not a plain relative path inside the model's folder"
    if not raw.resolve().is_relative_to(base):
        return f"its external data {location!r} resolves outside the model's folder"
    if any(p.is_symlink() for p in [raw, *raw.parents] if p != base and p.is_relative_to(base)):
        return f"its external data {location!r} is reached through a symlink"
    if not raw.is_file():
        return f"its external data file {location!r} is missing (keep it beside the .onnx file)"
    st = raw.stat()
    if st.st_nlink > 1:
        return f"its external data file {location!r} is a hardlink (it may be another file's data)"
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else st.st_size - offset
    except ValueError:
        return "its external data offset/length are not integers"
    expected = _nbytes(tensor)
    if offset < 0 or length < 0 or offset + length > st.st_size:
        return (f"its external data ({location!r}, offset {offset}, length {length}) runs past the end of the "
                f"{st.st_size}-byte file")
    if expected is not None and length != expected:
        return f"its external data holds {length} bytes but dims {list(tensor.dims)} need {expected}"
    return None


def _nbytes(tensor) -> int | None:
    return nbytes(tensor.dims, tensor.data_type)


def _check_inline(tensor, path: Path) -> None:
    if not tensor.HasField("raw_data"):
        return
    expected = _nbytes(tensor)
    if expected is not None and len(tensor.raw_data) != expected:
        raise InputError(f"{path}: initializer {tensor.name!r} declares dims {list(tensor.dims)} "
                         f"({expected} bytes) but holds {len(tensor.raw_data)}; the file is damaged or crafted.",
                         nodes=[tensor.name])


def _attach_external_data(model: ir.Model, base_dir: Path) -> None:
    """Other files' external data is read relative to (and contained in) the model's folder;
    the model's own mapped weights have absolute locations, checked when they were read."""
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if isinstance(tensor, ir.ExternalTensor) and not os.path.isabs(tensor.location):
            tensor.base_dir = str(base_dir)
