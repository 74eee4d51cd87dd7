"""Keras exporter: ONNX -> a functional keras.Model of real layers, channels-last throughout.

The graph must have been laid out by the assign-nhwc pass (irbridge.export does that). The
model holds only standard Keras layers plus, where ONNX semantics need them, the few layers
of irbridge.keras_layers (LRN, exact padded pooling, constant operands).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter is not the user's business
import contextlib  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import onnx_ir as ir  # noqa: E402

from ..._io import atomic_path, release_mapped, scratch_dir  # noqa: E402
from ...verify.runners import register_runner  # noqa: E402
from . import runner as _runner  # noqa: E402

register_runner(_runner.accepts, _runner.runner)  # verify runs what this exporter makes


def export(model: ir.Model, keep_nchw_io: bool = False, trainable: bool = True):
    """The keras.Model; `trainable=False` creates every layer frozen (the TF exporter's use).

    Each weight is copied once, into its TF variable, from the file the importer mapped; the
    file's pages leave the process as soon as the next variable is made, so the weights are
    held once, not twice, while the model is built (BERT-base, 415 MiB of weights: 946 -> 507 MB
    peak above the frameworks' baseline).
    """
    from .builder import build

    initializers = list(model.graph.initializers.values())
    try:
        with _mapped_pages_dropped_as_copied(initializers):
            return build(model, keep_nchw_io=keep_nchw_io, trainable=trainable)
    finally:
        release_mapped(initializers)  # the last layer's too; unmapped where no array views them


@contextlib.contextmanager
def _mapped_pages_dropped_as_copied(values):
    """While this is open, each TF variable creation first lets the files' pages of the mapped
    weights read so far leave memory (`release_mapped`: unmapped, or their pages dropped where
    a converter still holds a view): a layer copies its weights into its variables (given as
    initial values, or by `set_weights` right after), so by the next variable they are copies.
    `tf.variable_creator_scope` is TF's public hook on variable creation; on another Keras
    backend nothing is hooked and the pages go at the end of the build."""
    mapped = [v for v in values if isinstance(v.const_value, ir.ExternalTensor)]
    import keras

    if not mapped or keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf

    def creator(next_creator, **kwargs):
        release_mapped([v for v in mapped if getattr(v.const_value, "raw", None) is not None])
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        yield


def save(km, path: str | os.PathLike) -> Path:
    """Save as a .keras file, atomically (keras insists the name ends in .keras).

    The weights go to disk once, never through memory: Keras writes the model unzipped
    (`save(..., zipped=False)`: config.json, metadata.json and the weights .h5 written by h5py
    straight to a file) into a scratch folder beside the output, and `keras_zip.pack` makes the
    .keras zip around the .h5 in place. Keras's own .keras writer would build the whole weights
    .h5 in memory first and copy it into the zip (twice the weights: BERT-base +430 MB); its
    fallback for low memory streams, but in 8 KB pieces, and writes the weights twice. The file
    is a standard .keras (its entries in another order).
    """
    from .keras_zip import WEIGHTS, pack, room_for_the_header

    path = Path(path)
    if path.suffix != ".keras":
        from ...errors import InputError

        raise InputError(f"{path}: a Keras model is saved as a .keras file; name the output *.keras")
    with atomic_path(path) as tmp:
        scratch = scratch_dir(path.parent)
        try:
            folder = scratch / "model"
            try:
                with room_for_the_header(folder / WEIGHTS):
                    km.save(folder, zipped=False)
            except TypeError as e:  # a Keras without `zipped`: its own writer, as it decides
                if "zipped" not in str(e):
                    raise
                km.save(scratch / path.name)
                shutil.move(scratch / path.name, tmp)
            else:
                pack(folder, tmp)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path


def info(km) -> dict | None:
    """How a Keras model made by this exporter relates to its ONNX graph (None otherwise)."""
    from .builder import INFO

    try:
        return INFO.get(km)
    except TypeError:
        return None
