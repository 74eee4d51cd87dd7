"""Calibration samples for int8: an .npz of arrays by input name, a folder of images, or a dict.

Arrays are in the model's canonical (ONNX) layout with samples on the first axis: an array of
the input's rank gives one sample per row (fed as a batch of 1); one of rank + 1 gives
whole inputs. Read with irbridge's own .npz reader (no pickles). Images are decoded by
TensorFlow, resized to the input's height and width (bilinear) and scaled to 0..1 — no other
preprocessing; for anything else, give an .npz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError

MAX_SAMPLES = 200
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}


def calibration_samples(calibration, model, info) -> list[dict]:
    """[{input name: array in canonical layout}] from `calibration`."""
    specs = _input_specs(model)
    if isinstance(calibration, (str, Path)) and Path(calibration).is_dir():
        return _images(Path(calibration), specs)
    if isinstance(calibration, (str, Path)):
        from ...binding.npy import load_npz

        path = Path(calibration)
        if not path.is_file():
            raise InputError(f"--calibration {path}: no such file or folder")
        arrays = load_npz(path)
    elif isinstance(calibration, dict):
        arrays = {k: np.asarray(v) for k, v in calibration.items()}
    else:
        raise InputError("calibration: give an .npz path, a folder of images or {input name: array}")
    missing = [n for n in specs if n not in arrays]
    if missing:
        raise InputError(f"--calibration {calibration if not isinstance(calibration, dict) else '{...}'}: "
                         f"no array for input(s) {', '.join(missing)} (arrays: {', '.join(arrays) or 'none'})")
    counts = set()
    per_input = {}
    for name, (shape, dtype) in specs.items():
        a, rank = arrays[name], len(shape)
        if a.ndim == rank:
            rows = [a[i:i + 1] for i in range(a.shape[0])]
        elif a.ndim == rank + 1:
            rows = list(a)
        else:
            raise InputError(f"--calibration: array {name!r} has rank {a.ndim}; the input has rank {rank} "
                             f"(give rank {rank} with samples on axis 0, or rank {rank + 1})")
        per_input[name] = [np.ascontiguousarray(r.astype(dtype)) for r in rows[:MAX_SAMPLES]]
        counts.add(len(per_input[name]))
    if len(counts) != 1 or 0 in counts:
        raise InputError(f"--calibration: every input needs the same number of samples (> 0), got {sorted(counts)}")
    return [{n: per_input[n][i] for n in specs} for i in range(counts.pop())]


def _input_specs(model) -> dict:
    """{input: (shape in the canonical layout, dtype)} (the graph may already be laid out NHWC)."""
    from ...verify.onnx_runner import onnx_runner

    return {name: (tuple(shape), np.dtype(dtype)) for name, shape, dtype in onnx_runner(model).specs}


def _images(folder: Path, specs: dict) -> list[dict]:
    import tensorflow as tf

    if len(specs) != 1:
        raise InputError(f"--calibration {folder}: a folder of images calibrates a single-input model; "
                         "give an .npz with arrays by input name")
    (name, (shape, _)), = specs.items()
    if len(shape) != 4 or shape[1] not in (1, 3) or not all(isinstance(d, int) for d in shape[2:]):
        raise InputError(f"--calibration {folder}: input {name} has shape {shape}, not an image batch "
                         "(N, 1|3, H, W) with known H and W; give an .npz instead")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:MAX_SAMPLES]
    if not files:
        raise InputError(f"--calibration {folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it")
    out = []
    for path in files:
        try:
            img = tf.io.decode_image(path.read_bytes(), channels=shape[1], expand_animations=False)
        except Exception as e:  # noqa: BLE001 - a file that is no image: say which
            raise InputError(f"--calibration: cannot decode {path}: {str(e).splitlines()[0]}") from e
        img = tf.image.resize(tf.cast(img, tf.float32) / 255.0, shape[2:4]).numpy()
        out.append({name: np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32))})
    return out

