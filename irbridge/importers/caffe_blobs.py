"""Reading a .caffemodel without copying its weights.

A caffemodel is one protobuf NetParameter, and nearly all of its bytes are the packed `data`
fields of the layers' blobs. Parsing it with protobuf would hold the file, the parsed message
and then numpy arrays: three copies. Instead the file is memory-mapped and its wire format
walked field by field (never value by value): each blob becomes a read-only numpy view of the
mapping, and everything else (layer names, types, parameters: a few kilobytes) is handed to
protobuf as a "skeleton" net without blobs.

The wire format is walked with irbridge.protowire.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..protowire import Truncated, encode_varint, field_key, fields, varint_at
from .caffe_schema import CLASSES, NetParameter

# NetParameter.layer (V2) / .layers (V1), and each one's blobs field
LAYER_FIELDS = {100: ("LayerParameter", 7), 2: ("V1LayerParameter", 6)}


def read_caffemodel(path: Path) -> tuple[NetParameter, dict[str, list[np.ndarray]]]:
    """The net without its blobs, and each layer's blobs as zero-copy views of the mapped file."""
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped; it is an empty net
            return NetParameter(), {}
    try:
        return _read(buf, path)
    except (Truncated, IndexError) as e:
        raise InputError(f"{path}: not a readable caffemodel (truncated or corrupt: {e or 'ends early'}).") from None


def _read(buf, path: Path):
    skeleton, blobs = bytearray(), {}
    for number, wire, key_at, start, end in fields(buf, 0, len(buf)):
        if number not in LAYER_FIELDS or wire != 2:
            skeleton += buf[key_at:end]
            continue
        message, blob_field = LAYER_FIELDS[number]
        layer, arrays = bytearray(), []
        for n, w, k, s, e in fields(buf, start, end):
            if n == blob_field and w == 2:
                arrays.append((s, e))
            else:
                layer += buf[k:e]
        parsed = CLASSES[message].FromString(bytes(layer))
        if arrays:
            blobs[parsed.name] = [_blob(buf, s, e, path, parsed.name, i) for i, (s, e) in enumerate(arrays)]
        skeleton += field_key(number) + encode_varint(len(layer)) + layer
    try:
        return NetParameter.FromString(bytes(skeleton)), blobs
    except Exception as e:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise Truncated(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def _blob(buf, start: int, end: int, path: Path, layer: str, index: int) -> np.ndarray:
    shape, legacy, data = None, [0, 0, 0, 0], None
    for n, w, _, s, e in fields(buf, start, end):
        if n == 7 and w == 2:
            shape = _dims(buf, s, e)
        elif 1 <= n <= 4 and w == 0:  # V1: num, channels, height, width
            legacy[n - 1] = varint_at(buf, s)[0]
        elif n == 5 and w == 2:  # packed float data: the weights themselves, not copied
            data = np.frombuffer(buf, dtype="<f4", count=(e - s) // 4, offset=s)
        elif n == 8 and w == 2 and data is None:  # packed double data (rare): converted, so copied
            data = np.frombuffer(buf, dtype="<f8", count=(e - s) // 8, offset=s).astype(np.float32)
        elif n in (5, 8) and w in (5, 1):  # unpacked repeated values (never written by Caffe)
            blob = CLASSES["BlobProto"].FromString(bytes(buf[start:end]))
            data = np.asarray(blob.data or blob.double_data, np.float32)
            break
    if shape is None:
        shape = legacy
    data = np.zeros(0, np.float32) if data is None else data
    if int(np.prod(shape)) != data.size:
        raise InputError(f"{path}: layer {layer}: blob {index} declares shape {shape} "
                         f"({int(np.prod(shape))} values) but holds {data.size}; the file is corrupt.")
    return data.reshape(shape)


def _dims(buf, start: int, end: int) -> list[int]:
    """BlobShape's `repeated int64 dim = 1`, packed (one length-delimited field) or not."""
    dims = []
    for n, w, _, s, e in fields(buf, start, end):
        pos = s
        while n == 1 and pos < e:
            value, pos = varint_at(buf, pos)
            dims.append(value)
            if w == 0:
                break
    return dims
