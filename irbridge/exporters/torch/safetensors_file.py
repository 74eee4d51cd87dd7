"""Writing weights.safetensors byte-for-byte reproducibly, without copying the weights.

The safetensors library orders the `__metadata__` entries of its header by a hash map, so two
runs can write different bytes. The format is simple (an 8-byte little-endian header length,
a JSON header of name -> dtype/shape/offsets, then the raw little-endian tensors), so irbridge
writes it itself: keys sorted, tensors in name order, each streamed from its own memory.
"""

from __future__ import annotations

import json
import struct

DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "int64": "I64",
          "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def write(path, state: dict, metadata: dict[str, str]) -> None:
    """`state`: {name: torch.Tensor}. Readable by safetensors.torch.load_file."""
    import torch

    header, views, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        kind = str(t.dtype).removeprefix("torch.")
        if kind not in DTYPES:
            raise ValueError(f"weight {name}: dtype {t.dtype} has no safetensors code here")
        data = memoryview(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else memoryview(b"")
        header[name] = {"dtype": DTYPES[kind], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        views.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in views:
            f.write(data)
