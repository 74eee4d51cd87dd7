"""Reading bare weights: dicts, .npy (restricted), .npz, .safetensors, PyTorch state_dict files,
Keras weight .h5 files and caffemodels, into layers of named tensors."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError

# a parameter's name, normalized -> its role in the layer
ROLES = {"w": "weight", "weight": "weight", "weights": "weight", "kernel": "weight", "filter": "weight",
         "filters": "weight", "depthwise_kernel": "weight", "b": "bias", "bias": "bias", "biases": "bias",
         "gamma": "gamma", "beta": "beta", "moving_mean": "mean", "running_mean": "mean", "mean": "mean",
         "moving_variance": "var", "running_var": "var", "variance": "var", "var": "var", "alpha": "slope",
         "slope": "slope"}
SKIP = {"num_batches_tracked", "seed_generator_state"}


@dataclasses.dataclass
class SourceTensor:
    name: str  # as the file names it ("conv1_1/0", "features.0.weight", "block1_conv1/kernel:0")
    role: str | None  # from its name; None: by position
    array: np.ndarray


@dataclasses.dataclass
class SourceLayer:
    name: str
    tensors: list[SourceTensor]


def read_weights(source, trust_pickle: bool = False) -> tuple[list[SourceLayer], str | None]:
    """The layers of `source`, in file order, and the convention its format implies (or None)."""
    if isinstance(source, dict):
        return _from_mapping(source), None
    path = Path(os.fspath(source))
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from .npy import load_npy

        obj = load_npy(path, trust_pickle)
        if isinstance(obj, np.ndarray):
            raise InputError(f"{path}: holds one array, not named weights; save a dict (name -> array).")
        if not isinstance(obj, dict):
            raise InputError(f"{path}: holds a {type(obj).__name__}, not a dict of weights.")
        return _from_mapping(obj), None
    if suffix == ".npz":
        from .npy import load_npz

        return _from_mapping(load_npz(path)), None
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return _from_mapping(load_file(str(path))), None
        except Exception as e:  # noqa: BLE001 - safetensors raises its own SafetensorError
            raise InputError(f"{path}: not a readable .safetensors file ({str(e).splitlines()[0]}).") from e
    if suffix in (".pt", ".pth", ".bin", ".ckpt"):
        return _from_mapping(_state_dict(path)), "torch"
    if suffix in (".h5", ".hdf5", ".keras"):
        from ..importers.keras_h5 import DAMAGED

        try:
            return _keras_h5(path)
        except InputError:
            raise
        except DAMAGED as e:
            raise InputError(f"{path}: not a readable Keras weights file (damaged? {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}).") from e
    if suffix == ".caffemodel":
        return _caffemodel(path), "torch"
    raise InputError(f"{path}: unknown weights format {suffix!r}; expected .npy, .npz, .safetensors, "
                     ".pt/.pth (state_dict), .h5 (Keras weights) or .caffemodel.")


_NAME = re.compile(r"^(?P<layer>.+?)[/._](?P<param>" + "|".join(sorted(ROLES, key=len, reverse=True)) + r")(?:_0)?$",
                   re.IGNORECASE)


def split_name(name: str) -> tuple[str, str | None]:
    """'block1_conv1/kernel:0' -> ('block1_conv1', 'weight'); 'features.0.weight' -> ('features.0',
    'weight'); 'conv1_1_W' -> ('conv1_1', 'weight'); 'fire2/squeeze1x1_w_0' (Caffe2) -> ('fire2/squeeze1x1',
    'weight'); unknown parameter names keep the whole name."""
    base = re.sub(r":\d+$", "", name)
    m = _NAME.match(base)
    if m is None:
        return base, None
    return m.group("layer"), ROLES[m.group("param").lower()]


def _from_mapping(d: dict) -> list[SourceLayer]:
    """{layer: [W, b]} | {layer: {param: array}} | {"layer/param": array}, in insertion order."""
    layers: dict[str, SourceLayer] = {}
    for key, value in d.items():
        key = str(key)
        if isinstance(value, (list, tuple)):
            arrays = [(f"{key}/{i}", None, v) for i, v in enumerate(value)]
            layer = key
        elif isinstance(value, dict):
            arrays = [(f"{key}/{k}", ROLES.get(str(k).lower()), v) for k, v in value.items()]
            layer = key
        else:
            layer, role = split_name(key)
            if key.rpartition(".")[2] in SKIP or key.rpartition("/")[2] in SKIP:
                continue
            arrays = [(key, role, value)]
        target = layers.setdefault(layer, SourceLayer(layer, []))
        for name, role, v in arrays:
            a = _array(v, name)
            target.tensors.append(SourceTensor(name, role, a))
    return [ly for ly in layers.values() if ly.tensors]


def _array(v, name: str) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    a = np.asarray(v)
    if a.dtype.hasobject or a.dtype.kind not in "fiub":
        raise InputError(f"weight {name!r}: not a numeric array ({a.dtype}).")
    return a


def _state_dict(path: Path) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError and friends for refused content
        raise InputError(f"{path}: not a plain state_dict (loaded with weights_only=True, which refuses "
                         f"pickled code): {str(e).splitlines()[0]}") from e
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not a state_dict.")
    return {k: v for k, v in obj.items() if hasattr(v, "shape")}


def _keras_h5(path: Path) -> tuple[list[SourceLayer], str | None]:
    from ..importers.keras_h5 import _file_meta, _open, _text, named_weights

    f = _open(path)
    try:
        if "layer_names" in f.attrs or "model_weights" in f:  # Keras 1/2: whole model or save_weights
            layers = [SourceLayer(name, [SourceTensor(w, split_name(w)[1], a) for w, a in ws])
                      for name, ws in named_weights(f).items() if ws]
            backend = _text(f.attrs.get("backend", ""))
            if not backend and "model_config" in f.attrs:
                backend = _file_meta(f, path)["backend"]
            version = _text(f.attrs.get("keras_version", ""))
            hint = "theano" if backend == "theano" and version.startswith("1") else "tf" if backend else None
            return layers, hint
        if "layers" in f:  # Keras 3 .weights.h5: layers/<name>/vars/<i>
            layers = []
            for name, group in _keras3_layers(f["layers"]):
                arrays = [np.asarray(group["vars"][k]) for k in sorted(group["vars"], key=int)]
                layers.append(SourceLayer(name, [SourceTensor(f"{name}/vars/{i}", None, a)
                                                 for i, a in enumerate(arrays)]))
            return layers, "tf"
        raise InputError(f"{path}: no Keras weights found (neither layer_names nor layers/).")
    finally:
        f.close()


def _keras3_layers(group, prefix=""):
    for key in group:
        sub = group[key]
        if "vars" in sub and len(sub["vars"]):
            yield prefix + key, sub
        if hasattr(sub, "keys"):
            yield from _keras3_layers({k: sub[k] for k in sub if k != "vars"}, prefix + key + "/")


def _caffemodel(path: Path) -> list[SourceLayer]:
    """Caffe blobs by layer; BatchNorm's statistics divided by their moving-average factor."""
    from ..importers.caffe import _layers
    from ..importers.caffe_blobs import read_caffemodel

    net, blobs = read_caffemodel(path)
    kinds = {name: kind for name, kind, *_ in _layers(net)}
    layers = []
    for name, arrays in blobs.items():
        if kinds.get(name) == "BatchNorm" and len(arrays) == 3:
            factor = float(arrays[2].reshape(-1)[0])
            scale = 0.0 if factor == 0 else 1.0 / factor
            tensors = [SourceTensor(f"{name}/0", "mean", arrays[0] * scale),
                       SourceTensor(f"{name}/1", "var", arrays[1] * scale)]
        else:
            tensors = [SourceTensor(f"{name}/{i}", None, a) for i, a in enumerate(arrays)]
        layers.append(SourceLayer(name, tensors))
    return layers
