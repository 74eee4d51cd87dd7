"""ONNX exporter: the canonical graph itself, saved as a .onnx file.

Saving streams the weights: serializing through protobuf would copy every weight twice (into the
message, then into its bytes). Instead the model is serialized without its large initializers,
and each of those is written as its own `initializer` field straight from the tensor's memory
(a view of the source file where the importer mapped it). A protobuf message is the sequence
of its fields, so the file is an ordinary .onnx file that any reader loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import onnx
import onnx_ir as ir

from .._io import atomic_path
from ..protowire import encode_varint, field_key

# Weights past this size go to an external data file beside the .onnx (protobuf's 2 GB cap).
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3 - 64 * 1024**2
STREAMED_BYTES = 1024 * 1024  # initializers this large are written from their own memory
_GRAPH, _INITIALIZER, _RAW_DATA = 7, 5, 9  # ModelProto.graph, GraphProto.initializer, TensorProto.raw_data
_STREAM = "irbridge-streamed"  # placeholder location of a streamed tensor while serializing the rest


def export(model: ir.Model) -> ir.Model:
    return model


def weights_bytes(model: ir.Model) -> int:
    return sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None)


def save_onnx(model: ir.Model, path: str | os.PathLike) -> Path:
    """Write `model` atomically; weights over 2 GB go to `<name>.data` beside it."""
    path = Path(path)
    _detach_from(model, path)
    with atomic_path(path) as tmp:
        if weights_bytes(model) > EXTERNAL_DATA_THRESHOLD:
            ir.save(model, tmp, external_data=path.name + ".data")
        else:
            write_streamed(model, tmp)
    return path


def _detach_from(model: ir.Model, path: Path) -> None:
    """Weights still mapped from the file about to be replaced are read into memory first: after
    the replace, their offsets would point into the new file."""
    import numpy as np

    if not path.exists():
        return
    for value in model.graph.initializers.values():
        tensor = value.const_value
        if isinstance(tensor, ir.ExternalTensor) and os.path.exists(tensor.path) and os.path.samefile(tensor.path, path):
            value.const_value = ir.Tensor(np.array(tensor.numpy()), name=tensor.name)
            tensor.release()


def write_streamed(model: ir.Model, path: str | os.PathLike) -> None:
    """`model` as one .onnx file (< 2 GB), large weights written without being copied."""
    with open(path, "wb") as f:
        for chunk in streamed_chunks(model):
            f.write(chunk)


def streamed_chunks(model: ir.Model) -> Iterator[bytes | memoryview]:
    """The bytes of `model` as an .onnx file, in pieces; large weights are views, not copies."""
    proto, large = split_large_weights(model)
    graph = proto.graph
    entries = []
    for header, tensor in large.values():
        data = _raw_view(tensor)
        body = [header.SerializeToString(), field_key(_RAW_DATA), encode_varint(len(data)), data]
        entries += [field_key(_INITIALIZER), encode_varint(sum(map(len, body))), *body]
    graph_bytes = graph.SerializeToString()
    proto.ClearField("graph")
    before, after = _split(proto, _GRAPH)
    yield before
    yield field_key(_GRAPH)
    yield encode_varint(len(graph_bytes) + sum(map(len, entries)))
    yield graph_bytes
    yield from entries
    yield after


def split_large_weights(model: ir.Model) -> tuple[onnx.ModelProto, dict[str, tuple[onnx.TensorProto, ir.TensorProtocol]]]:
    """`model` as a proto without its large initializers, and those as {name: (TensorProto header
    without data, tensor)}. No weight is copied: while the rest is serialized the large tensors
    stand in as external references, whose data is never read."""
    large = {name: v.const_value for name, v in model.graph.initializers.items() if _streamable(v.const_value)}
    for name, tensor in large.items():
        model.graph.initializers[name].const_value = ir.ExternalTensor(
            _STREAM, 0, tensor.nbytes, tensor.dtype, shape=tensor.shape, name=name, base_dir="")
    try:
        proto = ir.to_proto(model)
    finally:
        for name, tensor in large.items():
            model.graph.initializers[name].const_value = tensor
    headers = {}
    for t in proto.graph.initializer:
        if t.name in large:
            header = onnx.TensorProto()
            header.CopyFrom(t)
            del header.external_data[:]
            header.ClearField("data_location")
            headers[t.name] = (header, large[t.name])
    kept = [t for t in proto.graph.initializer if t.name not in large]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    return proto, headers


def _streamable(tensor) -> bool:
    """Large tensors, and any held in an external file (whose reference would not survive a move)."""
    return (tensor is not None and (tensor.nbytes >= STREAMED_BYTES or isinstance(tensor, ir.ExternalTensor))
            and tensor.dtype != ir.DataType.STRING and tensor.dtype.bitwidth >= 8)


def _raw_view(tensor) -> memoryview:
    """The tensor's bytes as ONNX raw_data (little-endian), without a copy where possible."""
    import numpy as np

    array = tensor.numpy()
    if array.dtype.byteorder == ">":
        array = array.byteswap().view(array.dtype.newbyteorder("<"))
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _split(proto, number: int) -> tuple[bytes, bytes]:
    """The message's fields before and after field `number`, serialized (fields in number order)."""
    before, after = type(proto)(), type(proto)()
    before.CopyFrom(proto)
    after.CopyFrom(proto)
    for field, _ in proto.ListFields():
        (after if field.number < number else before).ClearField(field.name)
    return before.SerializeToString(), after.SerializeToString()
