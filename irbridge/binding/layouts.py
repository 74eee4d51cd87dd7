"""Weight layouts: the conventions frameworks store weights in, and the transforms between them.

Every slot of an architecture is described in ONNX's canonical terms (conv kernels OIHW, Dense
weights (out, in), a Dense after a Flatten reading (C, H, W) or (H, W, C) rows); a source tensor
is brought there from its convention, then to the target framework's own layout.

| convention            | conv kernel | flipped | Dense      | flatten order |
|-----------------------|-------------|---------|------------|---------------|
| tf (TF, Keras, npy)   | HWIO        | no      | (in, out)  | H, W, C       |
| torch (= caffe, onnx) | OIHW        | no      | (out, in)  | C, H, W       |
| theano (Keras 1 th)   | OIHW        | yes     | (in, out)  | C, H, W       |
| keras-channels-first  | HWIO        | no      | (in, out)  | C, H, W       |
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Convention:
    name: str
    kernel: str  # "HWIO" | "OIHW"
    flipped: bool
    dense: str  # "IO" | "OI"
    flatten: str  # "HWC" | "CHW"


CONVENTIONS = {c.name: c for c in (
    Convention("tf", "HWIO", False, "IO", "HWC"),
    Convention("torch", "OIHW", False, "OI", "CHW"),
    Convention("theano", "OIHW", True, "IO", "CHW"),
    Convention("keras-channels-first", "HWIO", False, "IO", "CHW"),
)}
ALIASES = {"caffe": "torch", "onnx": "torch", "pytorch": "torch", "keras": "tf", "th": "theano"}


def convention(name: str) -> Convention:
    key = ALIASES.get(name, name)
    if key not in CONVENTIONS:
        raise KeyError(name)
    return CONVENTIONS[key]


@dataclasses.dataclass
class Slot:
    """One weight of the architecture, in canonical terms."""

    layer: str
    role: str  # weight | bias | gamma | beta | mean | var | slope
    kind: str  # conv | depthwise | dense | vector
    shape: tuple  # canonical: conv (O, I, kh, kw); depthwise (C*M, 1, kh, kw); dense (out, in)
    target: str  # the framework's name of the weight (Keras variable path, state_dict key, initializer)
    flatten: tuple | None = None  # dense after a Flatten: ((C, H, W), the order the target reads rows in)


@dataclasses.dataclass
class Fit:
    """How a source tensor becomes a slot's canonical array."""

    array: np.ndarray
    steps: list[str]


def candidates(slot: Slot, a: np.ndarray) -> dict[str, tuple[np.ndarray, list[str]]]:
    """{source layout: (canonical array, steps)} for every layout the tensor's shape fits."""
    s = tuple(slot.shape)
    out = {}
    if slot.kind == "conv" and a.ndim == 4:
        o, i, kh, kw = s
        if a.shape == (o, i, kh, kw):
            out["OIHW"] = (a, [])
        if a.shape == (kh, kw, i, o):
            out["HWIO"] = (a.transpose(3, 2, 0, 1), ["transpose(3, 2, 0, 1): HWIO -> OIHW"])
    elif slot.kind == "depthwise" and a.ndim == 4:
        cm, _, kh, kw = s
        if a.shape == s:
            out["OIHW"] = (a, [])
        if a.shape[:2] == (kh, kw) and a.shape[2] * a.shape[3] == cm:  # Keras (kh, kw, C, M)
            out["HWIO"] = (a.transpose(2, 3, 0, 1).reshape(s), ["transpose(2, 3, 0, 1).reshape: HWCM -> (C*M)1HW"])
    elif slot.kind == "dense" and a.ndim == 2:
        if a.shape == s:
            out["OI"] = (a, [])
        if a.shape == s[::-1]:
            out["IO"] = (a.T, ["transposed: (in, out) -> (out, in)"])
    elif a.size == int(np.prod(s)) and (a.ndim <= 1 or a.shape == s or a.squeeze().ndim <= 1):
        out["vector"] = (a.reshape(s), [])
    return out


def to_canonical(slot: Slot, a: np.ndarray, conv: Convention) -> Fit | None:
    """The tensor in the slot's canonical layout under `conv`, or None if it does not fit."""
    options = candidates(slot, a)
    if not options:
        return None
    key = {"conv": conv.kernel, "depthwise": conv.kernel, "dense": conv.dense}.get(slot.kind, "vector")
    if key not in options:
        return None
    array, steps = options[key]
    steps = list(steps)
    if conv.flipped and slot.kind in ("conv", "depthwise"):
        array = array[:, :, ::-1, ::-1]
        steps.append("flipped 180 degrees (true convolution -> cross-correlation)")
    if slot.kind == "dense" and slot.flatten is not None:
        (c, h, w), reads = slot.flatten
        if reads != conv.flatten and h * w > 1 and c > 1:
            array = permute_rows(array, (c, h, w), conv.flatten, reads)
            steps.append(f"rows permuted from the {conv.flatten} to the {reads} flatten order ({c}x{h}x{w})")
    return Fit(np.ascontiguousarray(array), steps)


def permute_rows(w_out_in: np.ndarray, chw: tuple, src: str, dst: str) -> np.ndarray:
    """A (out, in) Dense weight whose inputs are flattened in `src` order, re-ordered to `dst`."""
    c, h, w = chw
    out = w_out_in.shape[0]
    if src == "HWC" and dst == "CHW":
        return w_out_in.reshape(out, h, w, c).transpose(0, 3, 1, 2).reshape(out, -1)
    return w_out_in.reshape(out, c, h, w).transpose(0, 2, 3, 1).reshape(out, -1)


def unambiguous_votes(slot: Slot, a: np.ndarray) -> set[str]:
    """The layouts the tensor's shape alone allows (one: it tells the convention; two: ambiguous)."""
    return set(candidates(slot, a)) - {"vector"}
