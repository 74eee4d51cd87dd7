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
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import onnx_ir as ir  # noqa: E402

from ..._io import atomic_path, release_mapped, scratch_dir  # noqa: E402
from ...verify.runners import register_runner  # noqa: E402
from . import runner as _runner  # noqa: E402

register_runner(_runner.accepts, _runner.runner)  # verify runs what this exporter makes


def export(model: ir.Model, keep_nchw_io: bool = False, trainable: bool = True):
    """The keras.Model; `trainable=False` creates every layer frozen (the TF exporter's use).

    Each weight is copied once, from the file the importer mapped into a TF variable; its
    mapped pages leave the process as soon as the next variable is made, so the weights are
    held once, not twice, while the model is built (BERT-base: 946 -> ~500 MB).
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

    The weights stream to the file: Keras writes its weights .h5 to a temporary file beside
    the output and copies it into the .keras zip, instead of building the whole .h5 in memory
    first (`streamed_weights`); the file is the same standard .keras either way."""
    path = Path(path)
    if path.suffix != ".keras":
        from ...errors import InputError

        raise InputError(f"{path}: a Keras model is saved as a .keras file; name the output *.keras")
    with atomic_path(path) as tmp:
        scratch = scratch_dir(path.parent)
        try:
            with streamed_weights():
                km.save(scratch / path.name)
            shutil.move(scratch / path.name, tmp)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path


_SAVING = threading.Lock()


@contextlib.contextmanager
def streamed_weights():
    """Within: Keras's .keras writer takes its disk path for the weights.

    Keras (saving_lib._save_model_to_fileobj) writes the weights .h5 into a BytesIO and then
    copies that into the zip (`writestr(getvalue())`: twice the weights in memory) whenever
    `is_memory_sufficient(model)` says there is room; otherwise it writes the .h5 to a temporary
    file in the output's folder and streams that into the zip. This answers "no" for the
    duration, so the disk path is taken. Yields True when the override is in effect; False (and
    Keras decides as usual) when this Keras's saving code is not the one described.
    """
    lib = _saving_lib()
    if lib is None:
        yield False
        return
    with _SAVING:
        decide = lib.is_memory_sufficient
        lib.is_memory_sufficient = _stream_weights
        try:
            yield True
        finally:
            lib.is_memory_sufficient = decide


def _stream_weights(model) -> bool:
    """irbridge's answer to Keras's "buffer the weights in memory?" while it saves: no."""
    return False


def _saving_lib():
    """keras.src.saving.saving_lib if its .keras writer asks `is_memory_sufficient`, else None."""
    try:
        from keras.src.saving import saving_lib
    except ImportError:
        return None
    writer = getattr(saving_lib, "_save_model_to_fileobj", None)
    names = getattr(getattr(writer, "__code__", None), "co_names", ())
    if "is_memory_sufficient" not in names or not callable(getattr(saving_lib, "is_memory_sufficient", None)):
        return None
    return saving_lib


def info(km) -> dict | None:
    """How a Keras model made by this exporter relates to its ONNX graph (None otherwise)."""
    from .builder import INFO

    try:
        return INFO.get(km)
    except TypeError:
        return None
