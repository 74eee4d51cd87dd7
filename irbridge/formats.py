"""Detecting a source's format from its path or object."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

# suffix -> format name. A format listed here but without an importer gets a clear error.
_SUFFIXES = {
    ".onnx": "onnx",
    ".keras": "keras",
    ".h5": "keras-h5",
    ".hdf5": "keras-h5",
    ".pb": "tf-graphdef",
    ".prototxt": "caffe",
    ".caffemodel": "caffe",
    ".npy": "weights",
    ".npz": "weights",
    ".safetensors": "weights",
    ".pt": "torch-file",
    ".pth": "torch-file",
}


def detect(source: object) -> str:
    """Return the format name of `source` (a path or an in-memory model)."""
    if isinstance(source, (str, os.PathLike)):
        return _detect_path(Path(source))
    mod = type(source).__module__
    names = {c.__name__ for c in type(source).__mro__}
    if "ModelProto" in names and mod.startswith("onnx"):
        return "onnx"
    if "Model" in names and mod.startswith("onnx_ir"):
        return "onnx"
    if "Module" in names and mod.split(".")[0] != "keras" and _is_torch_module(source):
        return "torch"
    roots = {c.__module__.split(".")[0] for c in type(source).__mro__}  # user subclasses too
    if roots & {"keras", "tf_keras"}:
        return "keras"
    if "tensorflow" in roots:
        return "tf"
    raise InputError(
        f"irbridge cannot load an object of type {type(source).__module__}.{type(source).__qualname__}: "
        "pass a file path, an onnx.ModelProto, an onnx_ir.Model or a torch.nn.Module."
    )


def _is_torch_module(obj: object) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _detect_path(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: no such file or directory.")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "tf-savedmodel"
        raise InputError(
            f"{path}: is a directory but not a TF SavedModel (no saved_model.pb inside); "
            "give the model file itself."
        )
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(b"\x89HDF"):
            return "keras-h5"
        raise InputError(
            f"{path}: cannot tell the model format from the suffix {path.suffix!r}; "
            "pass --from FMT (e.g. --from onnx)."
        )
    return fmt
