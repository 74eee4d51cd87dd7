"""Caffe files for tests: random .caffemodels for a prototxt, in the V2 (`layer`, blob `shape`)
or the legacy V1 (`layers`, blob num/channels/height/width) form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from google.protobuf import text_format

from irbridge.importers.caffe import _Builder
from irbridge.importers.caffe_schema import CLASSES, V1_TYPES, NetParameter
from irbridge.protowire import encode_varint, field_key

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "caffe"


def prototxt_net(path) -> NetParameter:
    return text_format.Parse(Path(path).read_text(), NetParameter(), allow_unknown_field=True)


def layer_blob_shapes(prototxt) -> dict[str, list[list[int]]]:
    """The blob shapes each layer of a prototxt needs, by Caffe's shape rules (via the importer)."""
    b = _Builder(Path(prototxt), None, {})
    b.build(prototxt_net(prototxt))
    return b.blob_shapes


def write_caffemodel(prototxt, path, seed: int = 0, v1: bool = False) -> dict[str, list[np.ndarray]]:
    """A trained-looking .caffemodel for `prototxt` with seeded random blobs; returns the blobs."""
    net = prototxt_net(prototxt)
    rng = np.random.default_rng(seed)
    blobs = {}
    kinds = {ly.name: ly.type for ly in net.layer}
    for layer, shapes in layer_blob_shapes(prototxt).items():
        arrays = []
        for i, s in enumerate(shapes):
            fan_in = int(np.prod(s[1:])) if len(s) > 1 else 1
            scale = np.sqrt(2.0 / fan_in) if i == 0 and len(s) > 1 else 0.1
            arrays.append((rng.standard_normal(s) * scale).astype(np.float32))
        if kinds.get(layer) == "BatchNorm":  # mean and variance sums, then the moving-average factor
            arrays[1:] = [np.abs(arrays[1]) * 10 + 0.5, np.array([10.0], np.float32)]
        blobs[layer] = arrays
    out = NetParameter(name=net.name)
    V1 = CLASSES["V1LayerParameter"]
    v1_enum = {v: k for k, v in V1_TYPES.items()}
    layers = []
    for ly in net.layer:
        if v1:
            dst = V1(name=ly.name, bottom=list(ly.bottom), top=list(ly.top))
            dst.type = V1.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_name[v1_enum.get(ly.type, "NONE")].number
            for field in ("convolution_param", "pooling_param", "inner_product_param", "lrn_param",
                          "relu_param", "dropout_param", "softmax_param", "concat_param", "eltwise_param",
                          "argmax_param", "power_param", "slice_param", "exp_param"):
                if ly.HasField(field):
                    getattr(dst, field).CopyFrom(getattr(ly, field))
        else:
            dst = CLASSES["LayerParameter"]()
            dst.CopyFrom(ly)
        layers.append((dst, blobs.get(ly.name, [])))
    _write_net(path, out, layers, v1)
    return blobs


def _write_net(path, net, layers, v1: bool) -> None:
    """Serialize `net` plus (layer message, blob arrays) pairs, streaming the arrays' bytes into the
    file as packed `data` fields (a protobuf message is the concatenation of its fields)."""
    def blob_chunks(a):
        a = np.ascontiguousarray(a, dtype="<f4")
        header = CLASSES["BlobProto"]()
        if v1:  # legacy 4-D form: num, channels, height, width
            header.num, header.channels, header.height, header.width = [1] * (4 - a.ndim) + list(a.shape)
        else:
            header.shape.dim.extend(a.shape)
        return [header.SerializeToString(), field_key(5), encode_varint(a.nbytes), memoryview(a).cast("B")]

    with open(path, "wb") as f:
        f.write(net.SerializeToString())
        for layer, arrays in layers:
            chunks = [layer.SerializeToString()]
            for a in arrays:
                body = blob_chunks(a)
                chunks += [field_key(6 if v1 else 7), encode_varint(sum(len(c) for c in body)), *body]
            f.write(field_key(2 if v1 else 100))
            f.write(encode_varint(sum(len(c) for c in chunks)))
            for c in chunks:
                f.write(c)


def write_blobs(path, blobs: dict[str, list[np.ndarray]], types: dict[str, str] | None = None) -> None:
    """A .caffemodel holding only named layers' blobs (V2 form, with `types` where given), as a
    weights file for a prototxt."""
    types = types or {}
    layers = [(CLASSES["LayerParameter"](name=n, type=types.get(n, "")), arrays) for n, arrays in blobs.items()]
    _write_net(path, NetParameter(), layers, v1=False)
