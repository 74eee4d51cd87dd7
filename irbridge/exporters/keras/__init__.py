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
import zipfile  # noqa: E402
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

    The weights stream to disk: Keras writes the model unzipped (`save(..., zipped=False)`:
    config.json, metadata.json and the weights .h5 written by h5py straight to a file) into a
    scratch folder beside the output, and `zip_keras_folder` packs those files into the .keras
    zip in 8 MB pieces. Keras's own .keras writer would build the whole weights .h5 in memory
    first and copy it into the zip (twice the weights: BERT-base +430 MB); its fallback for low
    memory streams, but in 8 KB pieces (slower). The file is the same standard .keras.
    """
    path = Path(path)
    if path.suffix != ".keras":
        from ...errors import InputError

        raise InputError(f"{path}: a Keras model is saved as a .keras file; name the output *.keras")
    with atomic_path(path) as tmp:
        scratch = scratch_dir(path.parent)
        try:
            folder = scratch / "model"
            try:
                km.save(folder, zipped=False)
            except TypeError as e:  # a Keras without `zipped`: its own writer, as it decides
                if "zipped" not in str(e):
                    raise
                km.save(scratch / path.name)
                shutil.move(scratch / path.name, tmp)
            else:
                zip_keras_folder(folder, tmp)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path


_FIRST = {"metadata.json": 0, "config.json": 1}  # Keras's own order; the weights and assets follow
_PIECE = 8 << 20


def zip_keras_folder(folder: Path, out: Path) -> None:
    """Pack a model Keras saved unzipped into the .keras zip Keras itself writes: the same
    entries (metadata.json, config.json, model.weights.h5, assets/...), stored uncompressed."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    files.sort(key=lambda entry: (_FIRST.get(entry[0], 2), entry[0]))
    with open(out, "wb") as f, zipfile.ZipFile(f, "w") as zf:
        for name, file in files:
            entry = zipfile.ZipInfo.from_file(file, name)
            with open(file, "rb") as src, zf.open(entry, "w") as dst:
                shutil.copyfileobj(src, dst, _PIECE)


def info(km) -> dict | None:
    """How a Keras model made by this exporter relates to its ONNX graph (None otherwise)."""
    from .builder import INFO

    try:
        return INFO.get(km)
    except TypeError:
        return None
