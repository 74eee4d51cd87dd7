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


def read(path) -> dict:
    """{name: torch.Tensor} of a safetensors file, each read into its own freshly allocated
    (aligned) tensor: no memory map stays behind, so the peak is the weights once, and kernels
    see the same alignment as in the model that was saved (bit-identical outputs)."""
    import torch

    torch_dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
                    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                    "U8": torch.uint8, "BOOL": torch.bool}
    out = {}
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        (n,) = struct.unpack("<Q", f.read(8))
        if n > size - 8:
            raise ValueError(f"{path}: header length {n} runs past the {size}-byte file")
        header = json.loads(f.read(n))
        start = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=torch_dtypes[info["dtype"]])
            if end - begin != t.numel() * t.element_size() or start + end > size:
                raise ValueError(f"{path}: tensor {name} has {end - begin} bytes for shape {info['shape']}")
            if t.numel():
                f.seek(start + begin)
                f.readinto(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
            out[name] = t
    return out
