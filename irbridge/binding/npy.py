"""A restricted .npy loader: weight dicts saved with `np.save` (like the classic vgg16.npy)
without unpickling arbitrary objects.

`np.save(d)` of a dict writes a 0-d object array whose payload is a pickle. `np.load(...,
allow_pickle=True)` would run whatever that pickle names; here the pickle is read by an
Unpickler that resolves only numpy's array reconstruction (plus `_codecs.encode`, which
Python 2 pickles use for byte strings). Dicts, lists, tuples, strings and numbers are built by
the pickle machine itself and need no lookup. Anything else is refused, naming what it asked for.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError

ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _Restricted(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")  # Python 2 pickles (the original vgg16.npy)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise InputError(f"{self.path}: the pickle inside asks for {module}.{name}, which a weight file never "
                         "needs; refusing to load it (it could run code). Re-save the weights as .npz or "
                         ".safetensors, or pass --trust-pickle if you trust this file.")


def read_header(f) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran order, dtype) from an .npy header (formats 1.0 and 2.0); ValueError else."""
    version = np.lib.format.read_magic(f)
    reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if reader is None:
        raise ValueError(f".npy format version {version} (1.0 and 2.0 are read)")
    return reader(f)


def load_npy(path: Path, trust_pickle: bool = False):
    """The array, or the dict/list of arrays, that `np.save` wrote to `path`."""
    with open(path, "rb") as f:
        try:
            shape, fortran, dtype = read_header(f)
        except ValueError as e:
            raise InputError(f"{path}: not a .npy file ({e}).") from e
        if not dtype.hasobject:
            _check_size(path.name, shape, dtype, os.fstat(f.fileno()).st_size - f.tell(), path)
            f.seek(0)
            return np.load(f, allow_pickle=False)
        if trust_pickle:
            f.seek(0)
            return np.load(f, allow_pickle=True, encoding="latin1")
        try:
            obj = _Restricted(f, path).load()
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - a damaged pickle stream raises many kinds of errors
            raise InputError(f"{path}: the object array inside cannot be read ({type(e).__name__}: {e}).") from e
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ():
        obj = obj.item()  # np.save(dict) stores the dict in a 0-d object array
    return obj


MAX_EXPANSION = 1000  # an .npz member may decompress to at most this many times its stored size


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, each checked against the size stored for it before it is read
    (a crafted header cannot make irbridge allocate what the file does not hold); object
    arrays (pickles) are refused."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                if info.file_size > MAX_EXPANSION * max(info.compress_size, 1) + (1 << 20):
                    raise InputError(f"{path}: member {info.filename} claims {info.file_size} bytes from "
                                     f"{info.compress_size} stored: refusing a decompression bomb.")
                with z.open(info) as f:
                    shape, fortran, dtype = read_header(f)
                    if dtype.hasobject:
                        raise InputError(f"{path}: member {info.filename} is an object array (a pickle, which "
                                         "could run code); re-save the weights as plain arrays.")
                    _check_size(info.filename, shape, dtype, info.file_size - f.tell(), path)
                    count = int(np.prod(shape, dtype=object))
                    data = f.read(count * dtype.itemsize)
                    a = np.frombuffer(data, dtype=dtype, count=count)
                    out[info.filename[:-4]] = a.reshape(shape[::-1]).T if fortran else a.reshape(shape)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise InputError(f"{path}: not a readable .npz ({type(e).__name__}: {e}).") from e
    return out


def _check_size(member: str, shape, dtype, available: int, path: Path) -> None:
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > available:
        raise InputError(f"{path}: {member} declares shape {tuple(shape)} ({need} bytes) but holds only "
                         f"{max(available, 0)}; the file is truncated or crafted.")
