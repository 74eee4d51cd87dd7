"""Reading an .onnx file without copying its weights.

`onnx.load` reads the whole file into memory, parses it (copying every weight into the message),
and onnx_ir copies each weight once more when it is read as an array: three copies of the
weights before any work is done. Instead the file is memory-mapped and its wire format walked
down to the graph's initializers (irbridge.protowire). Each large inline weight is cut out of
the bytes handed to protobuf and replaced by a reference to where it lies in the file itself:

    before: TensorProto{name: "fc6.weight", dims: [4096, 25088], raw_data: <411 MB>}
    after:  TensorProto{name: "fc6.weight", dims: [4096, 25088], data_location: EXTERNAL,
                        external_data: {location: "/abs/vgg16.onnx", offset: 1234, length: 411041792}}

The location is the file's resolved absolute path: no other tensor may have one (the importer
refuses absolute external data), and it stays right for symlinked or hard-linked model files.

onnx_ir then holds it as an ExternalTensor: a read-only view of the mapped file, read only where
it is used and unmapped again once a layer has copied it (irbridge._io.release_mapped).
"""

from __future__ import annotations

import dataclasses
import mmap
from pathlib import Path

import onnx
import onnx_ir as ir

from ..errors import InputError
from ..protowire import Truncated, encode_varint, field_key, fields, varint_at

MAPPED_BYTES = 64 * 1024  # inline weights at least this large are mapped, smaller ones parsed
_GRAPH, _INITIALIZER = 7, 5  # ModelProto.graph, GraphProto.initializer
_DIMS, _DATA_TYPE, _NAME, _RAW_DATA, _EXTERNAL_DATA, _DATA_LOCATION = 1, 2, 8, 9, 13, 14
_VARINT_KEY_DATA_LOCATION = encode_varint(_DATA_LOCATION << 3 | 0)


@dataclasses.dataclass(frozen=True)
class MappedWeight:
    """Where an inline weight lies in its .onnx file (`location`, absolute)."""

    location: str
    name: str
    offset: int
    length: int


def read_onnx(path: Path) -> tuple[onnx.ModelProto, set[MappedWeight]]:
    """The model with its large inline weights referring to their place in `path`, and those
    places (so that the external-data checks, meant for other files, can tell them apart)."""
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return onnx.ModelProto(), set()
    mapped: set[MappedWeight] = set()
    location = str(path.resolve())
    try:
        skeleton = bytearray()
        for number, wire, key_at, start, end in fields(buf, 0, len(buf)):
            if number == _GRAPH and wire == 2:
                graph = _graph(buf, start, end, path, location, mapped)
                skeleton += field_key(_GRAPH) + encode_varint(len(graph)) + graph
            else:
                skeleton += buf[key_at:end]
    except (Truncated, IndexError) as e:
        raise InputError(f"{path}: not a readable ONNX model (truncated or corrupt: {e or 'ends early'}). "
                         "Re-export or re-download it.") from None
    finally:
        buf.close()
    try:
        return onnx.ModelProto.FromString(bytes(skeleton)), mapped
    except Exception as e:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise InputError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e}). "
                         "The file may be truncated or of another format; re-export or re-download it.") from None


def _graph(buf, start: int, end: int, path: Path, location: str, mapped: set) -> bytearray:
    out = bytearray()
    for number, wire, key_at, s, e in fields(buf, start, end):
        if number == _INITIALIZER and wire == 2:
            tensor = _initializer(buf, s, e, path, location, mapped)
            if tensor is not None:
                out += field_key(_INITIALIZER) + encode_varint(len(tensor)) + tensor
                continue
        out += buf[key_at:e]
    return out


def _initializer(buf, start: int, end: int, path: Path, location: str, mapped: set) -> bytearray | None:
    """The tensor's fields with its raw_data replaced by a reference into the file; None to keep
    the tensor as it is (small, or not a plain little-endian array)."""
    raw, name, dtype, dims, others = [], "", None, [], bytearray()
    for number, wire, key_at, s, e in fields(buf, start, end):
        if number == _RAW_DATA and wire == 2:
            raw.append((s, e))
            continue
        if number in (_EXTERNAL_DATA, _DATA_LOCATION):
            return None
        if number == _NAME and wire == 2:
            name = bytes(buf[s:e]).decode("utf-8", "replace")
        elif number == _DATA_TYPE and wire == 0:
            dtype = varint_at(buf, s)[0]
        elif number == _DIMS:
            dims += _varints(buf, s, e) if wire == 2 else [varint_at(buf, s)[0]]
        others += buf[key_at:e]
    if len(raw) != 1 or raw[0][1] - raw[0][0] < MAPPED_BYTES or dtype is None:
        return None
    offset, stop = raw[0]
    expected = nbytes(dims, dtype)
    if expected is None:  # strings, sub-byte or unknown types: parsed as they are
        return None
    if expected != stop - offset:
        raise InputError(f"{path}: initializer {name!r} declares dims {dims} ({expected} "
                         f"bytes) but holds {stop - offset}; the file is damaged or crafted.", nodes=[name])
    mapped.add(MappedWeight(location, name, offset, stop - offset))
    others += _VARINT_KEY_DATA_LOCATION + encode_varint(onnx.TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(stop - offset))):
        entry = onnx.StringStringEntryProto(key=key, value=value).SerializeToString()
        others += field_key(_EXTERNAL_DATA) + encode_varint(len(entry)) + entry
    return others


def nbytes(dims, data_type: int) -> int | None:
    """Bytes a tensor of `dims` and ONNX `data_type` holds (None: strings, sub-byte or unknown types)."""
    try:
        dtype = ir.DataType(data_type)
    except ValueError:
        return None
    if dtype == ir.DataType.STRING or dtype.bitwidth % 8:
        return None
    count = 1
    for d in dims:
        count *= int(d)
    return count * dtype.bitwidth // 8


def _varints(buf, start: int, end: int) -> list[int]:
    values, pos = [], start
    while pos < end:
        value, pos = varint_at(buf, pos)
        values.append(value)
    return values
