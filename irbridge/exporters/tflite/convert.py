"""tf.lite.TFLiteConverter over the TF exporter's module: builtin ops, quantization, free dims.

Free dims stay free (-1 in the file's shape signature) when LiteRT can resize the input: each is
tried at two sizes right after the conversion. When that fails, the file is converted again
with those dims fixed (batch 1, other dims 8) and the report says so. The file carries
irbridge's notes (layouts, layer tensors) in its metadata, for `irbridge verify` (tflite_file.py).
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import UnsupportedError
from .calibration import calibration_samples
from .tflite_file import embed

ACCURACY_SAMPLES = 16  # calibration samples kept for the accuracy report
PROBE_SIZES = {0: (2, 3)}  # axis -> two sizes tried; other free axes: 8 and 9
FIXED_SIZE = {0: 1}  # the size a free dim takes when LiteRT cannot resize it (other axes: 8)


def convert(module, model, *, quantize=None, calibration=None, int8_io=False, allow_flex=False):
    """(flatbuffer bytes, meta) for the TF exporter's FrozenModule `module` of graph `model`."""
    import tensorflow as tf

    info = module.irbridge_info
    samples = calibration_samples(calibration, model, info) if calibration is not None else []
    specs = [(spec.shape.as_list(), spec.dtype, spec.name)
             for spec in module.serving_default.input_signature]
    fn = module.serving_default.get_concrete_function()
    notes, fixed = [], []
    free = [(i, ax) for i, (shape, _, _) in enumerate(specs) for ax, d in enumerate(shape) if d is None]
    try:
        flat = _convert(tf, fn, module, info, quantize, samples, int8_io, allow_flex)
        problem = _probe(flat, allow_flex, free) if free else None
    except UnsupportedError as e:  # e.g. an LSTM over free dims lowers to TensorList (Flex) ops
        if not free or not e.nodes:
            raise
        problem = f"with them free, the converter needs Flex ops {', '.join(e.nodes)}"
    if free:
        if problem is not None:
            fixed_specs = []
            for shape, dtype, name in specs:
                shape = [FIXED_SIZE.get(ax, 8) if d is None else d for ax, d in enumerate(shape)]
                fixed_specs.append(tf.TensorSpec(shape, dtype, name=name))
            for i, ax in free:
                fixed.append({"input": specs[i][2], "axis": ax, "size": FIXED_SIZE.get(ax, 8)})
            notes.append(f"LiteRT cannot resize this model's free dims ({problem}); the .tflite fixes "
                         + ", ".join(f"{d['input']} axis {d['axis']} = {d['size']}" for d in fixed))
            fn = tf.function(module._serve, input_signature=fixed_specs).get_concrete_function()
            flat = _convert(tf, fn, module, info, quantize, samples, int8_io, allow_flex)
    if quantize in ("float16", "dynamic-int8", "int8"):
        notes.append(f"quantized ({quantize}): outputs are held to no tolerance; see the accuracy report")
    meta = {
        "inputs": list(info["inputs"]), "outputs": list(info["outputs"]),
        "values": _value_layers(info), "layers": dict(info["layers"]),
        "quantize": quantize, "int8_io": int8_io, "allow_flex": allow_flex,
        "notes": notes, "fixed": fixed, "samples": samples[:ACCURACY_SAMPLES],
    }
    return embed(flat, meta), meta


def _convert(tf, fn, module, info, quantize, samples, int8_io, allow_flex) -> bytes:
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic-int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = _representative(samples, info)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    if allow_flex:
        ops = [*ops, tf.lite.OpsSet.SELECT_TF_OPS]
    conv.target_spec.supported_ops = ops
    try:
        return conv.convert()
    except Exception as e:  # noqa: BLE001 - TF's ConverterError: say which ops, in one message
        raise _explain(e, allow_flex) from e


def _explain(e: Exception, allow_flex: bool) -> Exception:
    text = str(e)
    flex = sorted((set(re.findall(r"\btf\.(\w+)", text)) | set(re.findall(r"\bFlex(\w+)", text)))
                  - {"lite", "compat", "function"})
    if flex and not allow_flex:
        return UnsupportedError(
            f"the model needs TensorFlow ops that LiteRT has no builtin kernel for: {', '.join(flex)}; "
            "--allow-flex (allow_flex=True) keeps them as Flex ops (the app then needs the Flex "
            "delegate)", nodes=flex)
    first = next((line for line in text.splitlines() if "error" in line.lower()), text.splitlines()[0] if text else "")
    return UnsupportedError(f"TFLiteConverter failed: {first.strip()[:500]}", nodes=flex)


def _representative(samples, info):
    order = [n for n, _ in info["inputs"]]

    def dataset():
        for feeds in samples:
            yield [np.ascontiguousarray(feeds[n].transpose(p)) for n, p in info["inputs"] if n in order]

    return dataset


def _probe(flat: bytes, allow_flex: bool, free) -> str | None:
    """None when every free dim resizes and runs at two sizes, else what failed."""
    from .runner import interpreter

    for k in range(2):
        try:
            it = interpreter(flat, allow_flex)
            details = it.get_input_details()
            for d in details:
                shape = [int(s) for s in d["shape_signature"]]
                shape = [(PROBE_SIZES.get(ax, (8, 9))[k] if s == -1 else s) for ax, s in enumerate(shape)]
                it.resize_tensor_input(d["index"], shape, strict=True)
            it.allocate_tensors()
            rng = np.random.default_rng(k)
            for d in details:
                shape = it.get_tensor(d["index"]).shape
                x = rng.standard_normal(shape) if np.dtype(d["dtype"]).kind == "f" else np.zeros(shape)
                it.set_tensor(d["index"], x.astype(d["dtype"]))
            it.invoke()
        except Exception as e:  # noqa: BLE001 - the file cannot run at this size: fix the dims
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    return None


def _value_layers(info) -> dict:
    """{onnx value: (Keras layer name, output index, perm)}: where a value lives in the .tflite."""
    out = {}
    for name, (tensor, perm) in info["values"].items():
        hist = getattr(tensor, "_keras_history", None)
        if hist is None:
            continue
        out[name] = (hist.operation.name, hist.tensor_index, tuple(perm))
    return out
