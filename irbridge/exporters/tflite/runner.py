"""verify's runner over a .tflite made by this exporter (registered in __init__): the LiteRT
interpreter (ai-edge-litert; tf.lite.Interpreter where that package is missing, or for Flex
ops, whose kernels only TensorFlow's interpreter links in).

Feeds are laid out as the file holds its inputs (NHWC for images), quantized when the
interfaces are int8; outputs are dequantized and brought back to the ONNX layout. `values`
reads every layer's output tensor (experimental_preserve_all_tensors), dequantized: a TFLite
tensor is named after the ops fused into it ("functional_1/conv1_1/Relu;functional_1/conv1_1/
BiasAdd;..."), the first of which names the Keras layer, itself named after the source layer.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ...verify.runners import Runner

THREADS = 2


def accepts(obj) -> bool:
    return isinstance(obj, bytes) and hasattr(obj, "irbridge_tflite")


def interpreter(flat: bytes, flex: bool = False, preserve: bool = False, threads: int = THREADS,
                litert_only: bool = False):
    """A LiteRT interpreter over the flatbuffer (XNNPACK on, `threads` threads). `litert_only`
    (files read from disk): ai-edge-litert's builtin kernels and nothing else, never Flex."""
    Interpreter = None
    if not flex:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            if litert_only:
                raise
            Interpreter = None
    if Interpreter is None:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors warns that it is for debugging: it is
        return Interpreter(model_content=bytes(flat), num_threads=threads,
                           experimental_preserve_all_tensors=preserve)


def tflite_runner(flat) -> Runner:
    meta = flat.irbridge_tflite
    names_in = [n for n, _ in meta["inputs"]]
    names_out = [n for n, _ in meta["outputs"]]
    cache: dict = {}

    def get(preserve: bool):
        if preserve not in cache:
            from_disk = "path" in meta  # a file read by tflite_file.read: LiteRT's builtins only
            it = interpreter(flat, meta.get("allow_flex", False), preserve, litert_only=from_disk)
            ins, outs = io_details(it)
            cache[preserve] = (it, (by_name(ins, names_in), by_name(outs, names_out)), {})
        return cache[preserve]

    def invoke(feeds, preserve=False):
        it, (ins, outs), shapes = get(preserve)
        batch = _fixed_batch(meta, feeds)
        if batch is not None:  # a file fixed at batch 1: run the samples one by one
            parts = [invoke_once(it, ins, outs, shapes, {k: v[i:i + 1] for k, v in feeds.items()})
                     for i in range(batch)]
            return {n: np.concatenate([p[n] for p in parts], axis=0) for n in names_out}, it
        return invoke_once(it, ins, outs, shapes, feeds), it

    def invoke_once(it, ins, outs, shapes, feeds):
        xs = {n: _quantize(np.ascontiguousarray(np.asarray(feeds[n]).transpose(p)), ins[n])
              for n, p in meta["inputs"]}
        now = {n: x.shape for n, x in xs.items()}
        if now != shapes:
            for n, x in xs.items():
                it.resize_tensor_input(ins[n]["index"], list(x.shape), strict=False)
            it.allocate_tensors()
            shapes.clear()
            shapes.update(now)
        for n, x in xs.items():
            it.set_tensor(ins[n]["index"], x)
        it.invoke()
        return {n: _dequantize(it.get_tensor(outs[n]["index"]), outs[n]).transpose(np.argsort(p))
                for n, p in meta["outputs"]}

    def run(feeds):
        return invoke(feeds)[0]

    def values(feeds, reference=None):
        results, it = invoke(feeds, preserve=True)
        tensors = layer_tensors(it)
        out = dict(results)  # the outputs' tensors are named after the signature, not a layer
        for value, (layer, index, perm) in meta["values"].items():
            if index != 0 or layer not in tensors or value in out:
                continue
            d = tensors[layer]
            try:
                t = _dequantize(it.get_tensor(d["index"]), d)
            except ValueError:  # not kept (an in-place op reused it)
                continue
            if t.ndim == len(perm):
                out[value] = t.transpose(np.argsort(perm))
        return out

    return Runner(names_in, names_out, run, None, values, meta["layers"], close=cache.clear)


def layer_tensors(it) -> dict:
    """{Keras layer name: details of the last tensor (in execution order) that layer wrote}."""
    details = {d["index"]: d for d in it.get_tensor_details()}
    out = {}
    for op in it._get_ops_details():
        for idx in op["outputs"]:
            d = details.get(int(idx))
            if d is None:
                continue
            layer = _layer_of(d["name"])
            if layer is not None:
                out[layer] = d
    return out


def _layer_of(tensor_name: str) -> str | None:
    """The Keras layer of a TFLite tensor name: 'functional_1/conv1_1/Relu;...' -> 'conv1'
    (TF's name scope adds '_1' to the layer's name)."""
    first = tensor_name.split(";")[0].split(":")[0]
    parts = first.split("/")
    if len(parts) < 3 or not parts[0].startswith(("functional", "model", "sequential")):
        return None
    return re.sub(r"_\d+$", "", parts[1])


def io_details(it):
    """({name: details} of the inputs, of the outputs): the file's one signature, or (a file with
    none) its input and output tensors in order."""
    sigs = it.get_signature_list()
    if sigs:
        sig = it.get_signature_runner("serving_default" if "serving_default" in sigs else next(iter(sigs)))
        return sig.get_input_details(), sig.get_output_details()
    return ({d["name"]: d for d in it.get_input_details()}, {d["name"]: d for d in it.get_output_details()})


def by_name(details: dict, names: list[str]) -> dict:
    """{ONNX name: details}: TF turns characters a signature key cannot hold ('/', ':') into '_'."""
    if all(n in details for n in names):
        return {n: details[n] for n in names}
    keyed = {_key(k): d for k, d in details.items()}
    if all(_key(n) in keyed for n in names):
        return {n: keyed[_key(n)] for n in names}
    if len(details) == len(names):  # in signature order
        return dict(zip(names, details.values()))
    raise KeyError(f"the .tflite signature has {sorted(details)}; expected {names}")


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "_", name.lower())


def _fixed_batch(meta, feeds) -> int | None:
    fixed = {(d["input"], d["axis"]) for d in meta.get("fixed", [])}
    for n, p in meta["inputs"]:
        # the file's axis 0 is the batch when the perm keeps it first
        if (n, 0) in fixed and p and p[0] == 0 and np.shape(feeds[n])[0] != 1:
            return int(np.shape(feeds[n])[0])
    return None


def _quantize(x: np.ndarray, d: dict) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    scale, zero = d["quantization"]
    if dtype.kind in "iu" and scale and np.asarray(x).dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _dequantize(t: np.ndarray, d: dict) -> np.ndarray:
    scale, zero = d["quantization"]
    if np.asarray(t).dtype.kind in "iu" and scale:
        return ((t.astype(np.float32) - zero) * scale).astype(np.float32)
    return np.array(t)
