""".tflite files on disk: irbridge's notes embedded in the flatbuffer, and reading a file back
(one irbridge wrote, or any other) so that `irbridge verify model.onnx model.tflite` can run it.

The notes (interface layouts, layer tensors, quantization; not the calibration samples) go in
the model's `metadata` table under the name "irbridge" as JSON — the place TFLite keeps
`min_runtime_version` and tflite_support keeps its model metadata; the interpreter ignores it.

Reading executes nothing from the file but the LiteRT interpreter's own builtin kernels: the
notes are parsed as JSON and checked, and a file read from disk never gets TensorFlow's Flex
delegate (Flex ops could read and write files). A file without notes (another converter's)
gets them inferred: each interface's layout is matched to the ONNX reference's shape
(as is, or channels-last), dims the file fixes where ONNX leaves them free are noted as fixed,
and the quantization is read off the tensor types.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import InputError

META_NAME = "irbridge"
IDENTIFIER = b"TFL3"
KEPT = ("inputs", "outputs", "values", "layers", "quantize", "int8_io", "fixed")


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # TF's copy of the same generated code
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def embed(flat: bytes, meta: dict) -> bytes:
    """`flat` with `meta` (the JSON-able part) in its metadata table as "irbridge"."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(flat, 0)
    blob = json.dumps({k: meta[k] for k in KEPT if k in meta}, sort_keys=True, separators=(",", ":"))
    buf = schema.BufferT()
    buf.data = np.frombuffer(blob.encode(), np.uint8)
    model.buffers = [*(model.buffers or []), buf]
    entry = schema.MetadataT()
    entry.name = META_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (META_NAME, META_NAME.encode())] + [entry]
    builder = _ByteBuilder(len(flat) + len(blob) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(memoryview(builder.Bytes)[builder.Head():])


def _builder_class():
    import flatbuffers

    class ByteBuilder(flatbuffers.Builder):
        """flatbuffers' Builder, writing byte arrays (the weights' buffers) in one copy: its own
        CreateNumpyVector byte-swaps every non-'<' dtype, uint8 included (15 s for AlexNet's 233 MB)."""

        def CreateNumpyVector(self, x):
            if x.dtype.itemsize != 1 or x.ndim != 1:
                return super().CreateNumpyVector(x)
            self.StartVector(1, x.size, 1)
            self.head = self.head - x.size
            self.Bytes[self.head:self.head + x.size] = memoryview(np.ascontiguousarray(x)).cast("B")
            self.vectorNumElems = x.size
            return self.EndVector()

    return ByteBuilder


def _ByteBuilder(size: int):
    return _builder_class()(size)


def embedded(flat: bytes) -> dict | None:
    """The notes irbridge embedded in `flat`, or None (another converter's file)."""
    schema = _schema()
    model = schema.Model.GetRootAs(flat, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() in (META_NAME, META_NAME.encode()):
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode()) if not isinstance(data, int) else None
    return None


def read(path, reference=None):
    """A TFLiteModel (bytes + `irbridge_tflite` notes) from a .tflite file, for verify.

    `reference`: the ONNX graph (onnx_ir.Model) it will be compared with; needed to infer the
    interface layouts of a file irbridge did not write. A file LiteRT cannot read -> InputError
    naming it."""
    from . import TFLiteModel
    from .runner import interpreter

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such .tflite file")
    flat = path.read_bytes()
    try:
        import ai_edge_litert.interpreter  # noqa: F401 - files from disk: LiteRT's builtins, never TF's Flex
    except ImportError:
        raise InputError(f"{path}: running a .tflite file needs the ai-edge-litert package "
                         "(pip install ai-edge-litert)") from None
    if len(flat) < 8 or flat[4:8] != IDENTIFIER:
        raise InputError(f"{path}: not a .tflite file (no TFL3 flatbuffer identifier); give a LiteRT model")
    try:
        it = interpreter(flat, flex=False, litert_only=True)  # verifies the flatbuffer, resolves the ops
        meta = embedded(flat)
    except Exception as e:  # noqa: BLE001 - a damaged or hostile file: say which, in one line
        raise InputError(f"{path}: LiteRT cannot read this .tflite ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:300] if str(e) else ''}); is the file damaged?") from e
    try:
        meta = _checked(meta) if meta is not None else _inferred(it, reference)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: its irbridge notes are malformed ({e}); the file was altered") from e
    meta.update(allow_flex=False, notes=list(meta.get("notes", [])), samples=[], path=str(path))
    out = TFLiteModel(flat)
    out.irbridge_tflite = meta
    return out


def _checked(meta: dict) -> dict:
    """The embedded notes, with every field of the type the runner expects."""
    def perm_pairs(rows):
        return [(str(n), [int(p) for p in perm]) for n, perm in rows]

    out = {"inputs": perm_pairs(meta["inputs"]), "outputs": perm_pairs(meta["outputs"]),
           "values": {str(v): (str(layer), int(index), tuple(int(p) for p in perm))
                      for v, (layer, index, perm) in dict(meta.get("values", {})).items()},
           "layers": {str(k): str(v) for k, v in dict(meta.get("layers", {})).items()},
           "quantize": meta.get("quantize"), "int8_io": bool(meta.get("int8_io", False)),
           "fixed": [{"input": str(d["input"]), "axis": int(d["axis"]), "size": int(d["size"])}
                     for d in meta.get("fixed", [])], "embedded": True}
    if out["quantize"] not in (None, "float16", "dynamic-int8", "int8"):
        raise ValueError(f"quantize {out['quantize']!r}")
    return out


def _inferred(it, reference) -> dict:
    """Notes for a file irbridge did not write, from its interfaces and the ONNX reference."""
    from .runner import io_details

    if reference is None:
        raise ValueError("a .tflite irbridge did not write needs the ONNX reference to lay out its inputs")
    ins, outs = io_details(it)
    notes, fixed = [], []
    inputs = _match(ins, [(v.name, v.shape) for v in reference.graph.inputs
                          if v.name not in reference.graph.initializers], "input", notes, fixed)
    outputs = _match(outs, [(v.name, v.shape) for v in reference.graph.outputs], "output", notes, [])
    return {"inputs": inputs, "outputs": outputs, "values": {}, "layers": {},
            "quantize": _quantization(it), "int8_io": any(np.dtype(d["dtype"]).kind in "iu" and d["quantization"][0]
                                                          for d in ins.values()),
            "fixed": fixed, "notes": notes, "embedded": False}


def _match(details: dict, onnx_io: list, kind: str, notes: list, fixed: list) -> list:
    """[(ONNX name, perm ONNX -> file)] for interfaces in signature order (names mangled by TF)."""
    from .runner import by_name

    names = [n for n, _ in onnx_io]
    try:
        matched = by_name(details, names)
    except KeyError as e:
        raise ValueError(f"its {kind}s do not match the reference's ({e})") from None
    out = []
    for name, shape in onnx_io:
        sig = [int(s) for s in matched[name].get("shape_signature", matched[name]["shape"])]
        dims = [d if isinstance(d, int) else None for d in (shape or [None] * len(sig))]
        rank = len(dims)
        perms = [tuple(range(rank))] + ([(0, *range(2, rank), 1)] if rank >= 3 else [])
        fits = [p for p in perms if len(sig) == rank and all(
            dims[p[i]] is None or s == -1 or s == dims[p[i]] for i, s in enumerate(sig))]
        if not fits:
            raise ValueError(f"{kind} {name}: file shape {sig} fits neither ONNX shape {dims} nor channels-last")
        perm = fits[-1] if len(fits) > 1 and rank == 4 else fits[0]  # ambiguous images: channels-last
        if len(fits) > 1 and perm != fits[0]:
            notes.append(f"{kind} {name}: shape {sig} fits as is and channels-last; taken as channels-last")
        for i, s in enumerate(sig):
            if s != -1 and dims[perm[i]] is None:
                fixed.append({"input": name, "axis": perm[i], "size": s})
                notes.append(f"the .tflite fixes {kind} {name} axis {perm[i]} = {s} (free in ONNX)")
        out.append((name, list(perm)))
    return out


def _quantization(it) -> str | None:
    """What a file's tensor types say: int8 activations, int8 weights only, or float16 weights."""
    kinds = {np.dtype(d["dtype"]) for d in it.get_tensor_details()}
    ops = {op["op_name"] for op in it._get_ops_details()}
    ins = it.get_input_details()
    if "QUANTIZE" in ops or any(np.dtype(d["dtype"]) in (np.dtype(np.int8), np.dtype(np.uint8)) for d in ins):
        return "int8"
    if np.dtype(np.int8) in kinds:
        return "dynamic-int8"
    if np.dtype(np.float16) in kinds:
        return "float16"
    return None
