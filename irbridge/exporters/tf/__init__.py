"""TF exporter: a SavedModel usable from plain TF code (seed 003, done right).

Built on the Keras exporter's channels-last model with every layer non-trainable: the
weights are variables created trainable=False (no GradientTape watches them, no optimizer
gets them) and are restored from the SavedModel itself on load. Signatures:

- `serving_default(<input>)` -> {<output name>: tensor}, the model's outputs;
- `layers(<input>)` -> {<layer name>: tensor}, every named layer's output (style transfer,
  feature extraction: `loaded.signatures["layers"](x)["block5_pool"]`).

With `preprocess="caffe-bgr-mean"` the signatures take RGB images in 0..255 and apply Caffe's
preprocessing first: RGB -> BGR, then subtract the ImageNet BGR mean (103.939, 116.779, 123.68).
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx_ir as ir

from ..._io import atomic_path
from ...verify.runners import register_runner
from . import runner as _runner

register_runner(_runner.accepts, _runner.tf_runner)  # verify runs what this exporter makes

PREPROCESS = {
    None: None,
    "none": None,
    "caffe-bgr-mean": (103.939, 116.779, 123.68),
}


def export(model: ir.Model, keep_nchw_io: bool = False, preprocess: str | None = None):
    from ...errors import InputError
    from ..keras import export as export_keras
    from .module import FrozenModule

    if preprocess not in PREPROCESS:
        raise InputError(f"unknown preprocessing {preprocess!r}; choose from: caffe-bgr-mean")
    km = export_keras(model, keep_nchw_io=keep_nchw_io, trainable=False)
    return FrozenModule(km, PREPROCESS[preprocess])


def save(module, directory: str | os.PathLike) -> Path:
    """Write the SavedModel directory atomically."""
    import tensorflow as tf

    directory = Path(directory)
    with atomic_path(directory, directory=True) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=module.signatures())
    return directory
