"""The public API (DESIGN.md §4): load, normalize, export, save, convert, verify."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import onnx_ir as ir

from . import exporters, importers, progress, provenance
from .errors import InputError, VerificationError
from .verify import VerificationReport, reference_run, verify_against
from .verify import verify as _verify


@dataclasses.dataclass
class ConversionResult:
    model: ir.Model  # the canonical ONNX graph
    exported: object  # the target framework's model
    report: VerificationReport | None  # None when check=False
    output: Path | None  # where it was saved, if anywhere
    seconds: dict = dataclasses.field(default_factory=dict)
    accuracy: dict | None = None  # a quantized TFLite export: irbridge.verify.quantized's report


def load(source, weights=None, *, format: str | None = None, inputs=None, dynamic=None,
         trust_code: bool = False, trust_pickle: bool = False) -> ir.Model:
    """Load a model file or object into an ONNX graph, literally (no layout changes).

    `inputs`: example arrays (a tuple/list in input order, or {name: array}) or {name: shape}.
    Shapes fix the dims they name (recorded: `irbridge.dims.summary(model)["fixed"]`); a dim
    the source leaves free stays free otherwise. A PyTorch module is traced from the inputs
    (arrays or shapes alike); its batch stays free, and `dynamic`: {name: {axis: label}} frees
    more axes.
    `trust_code=True` lets a Keras file's Lambda layers and custom objects load, `trust_pickle=True`
    unpickles a whole-module .pt file (both off by default: model files come from the internet)."""
    kwargs = {"dynamic": dynamic} if dynamic is not None else {}
    model = importers.load(source, weights, format=format, inputs=inputs, trust_code=trust_code,
                           trust_pickle=trust_pickle, **kwargs)
    shapes = _shapes_of(inputs)
    if shapes and model.metadata_props.get(provenance.SOURCE_FORMAT) != "torch":
        _fix_dims(model, shapes)  # a PyTorch source is traced from them: its batch stays free
    from . import dims

    dims.record_free(model)
    return model


def _shapes_of(inputs) -> dict | None:
    """{name: shape} when `inputs` gives shapes (not arrays), else None."""
    if isinstance(inputs, dict) and inputs and _all_shapes(inputs):
        return {k: tuple(v) for k, v in inputs.items()}
    return None


def _fix_dims(model: ir.Model, shapes: dict) -> None:
    """Shapes the user gave fix the free dims they name (checked first: clear errors, exit 2)."""
    from . import dims
    from .verify.inputs import checked_shape

    known = {v.name: v for v in dims.graph_inputs(model)}
    unknown = [n for n in shapes if n not in known]
    if unknown:
        raise InputError(f"--input {unknown[0]}: the model has no input of that name "
                         f"(its inputs: {', '.join(known) or 'none'})")
    for name, shape in shapes.items():
        checked_shape(name, shape, known[name].shape)
    dims.fix_shapes(model, shapes, "fixed by --input / inputs=")


def normalize(model: ir.Model, passes=None, *, dump_dir=None) -> ir.Model:
    """Run passes (the default pipeline, or names / pass objects in order) on a copy of `model`."""
    from . import passes as passes_mod

    copy = model.clone()
    return passes_mod.run(copy, passes, dump_dir=dump_dir)


def export(model: ir.Model, target: str, *, check: bool = True, inputs=None,
           atol: float | None = None, rtol: float | None = None, keep_nchw_io: bool = False,
           preprocess: str | None = None, quantize: str | None = None, calibration=None,
           int8_io: bool = False, allow_flex: bool = False, max_error: float | None = None):
    """Export a canonical graph to `target` ("onnx", "torch", "keras", "tf", "tflite"); verified
    against onnxruntime unless check=False (raises VerificationError on a mismatch).

    keras/tf/tflite: channels-last throughout, NHWC interfaces unless `keep_nchw_io`; tf:
    `preprocess` ("caffe-bgr-mean") bakes RGB->BGR and mean subtraction into the signatures.
    tflite: the flatbuffer bytes; `quantize` "float16" | "dynamic-int8" | "int8" (with
    `calibration`: .npz path, image folder or {name: array}; `int8_io`: int8 interfaces) is
    measured instead of held to a tolerance: the report is `exported.irbridge_tflite["accuracy"]`,
    and `max_error` (max abs error of any output) turns it back into pass/fail."""
    ref, failed = _reference(model, inputs, check and target != "onnx")  # first: see convert()
    tfl = _tflite_options(target, quantize, calibration, int8_io, allow_flex, max_error)
    exported = exporters.export_raw(model, target, **_options(target, keep_nchw_io, preprocess), **tfl)
    if failed is not None:
        raise failed
    check = ref is not None
    if check:
        report, _ = _check(ref, exported, model, target, atol, rtol, max_error)
        if not report.ok:
            raise VerificationError(f"the {target} export does not match onnxruntime:\n{report}", report)
    return exported


def _tflite_options(target, quantize, calibration, int8_io, allow_flex, max_error) -> dict:
    given = {"quantize": quantize, "calibration": calibration, "int8_io": int8_io, "allow_flex": allow_flex}
    if target != "tflite":
        used = [k for k, v in given.items() if v not in (None, False)] + (["max_error"] if max_error is not None else [])
        if used:
            raise InputError(f"{', '.join(used)}: options of --to tflite, not {target}")
        return {}
    if max_error is not None and quantize is None:
        raise InputError("--max-error applies to quantized exports (--quantize); float32 is held to DESIGN tolerances")
    return given


def _check(ref, exported, model, target, atol, rtol, max_error):
    """(report, accuracy): the comparison with the reference; for a quantized TFLite export the
    accuracy report decides instead (pass unless `max_error` is exceeded)."""
    report = verify_against(ref, exported, atol=atol, rtol=rtol)
    meta = getattr(exported, "irbridge_tflite", None)
    if meta is None:
        return report, None
    report.notes = list(dict.fromkeys(report.notes + meta["notes"]))
    if meta["quantize"] is None:
        return report, None
    from .verify.quantized import accuracy_report, within

    samples = [feeds for feeds, _ in ref.runs] + list(meta["samples"])
    acc = accuracy_report(model, exported, samples, quantize=meta["quantize"])
    acc["max_error"] = max_error
    acc["ok"] = max_error is None or within(acc, max_error)
    meta["accuracy"] = acc
    report.accuracy = acc  # the CLI's JSON says what was measured when --max-error fails it
    report.ok = acc["ok"]
    held = f"max_error {max_error:g}" if max_error is not None else "measured, not held to a tolerance"
    report.outputs = [dataclasses.replace(c, ok=max_error is None or c.max_abs <= max_error,
                                          tolerance="quantized", note=f"{meta['quantize']}: {held}")
                      for c in report.outputs]
    if report.ok:
        report.first_divergence = None
    return report, acc


def _options(target: str, keep_nchw_io: bool, preprocess: str | None) -> dict:
    options = {}
    if keep_nchw_io:
        if target not in ("keras", "tf", "tflite"):
            raise InputError(f"keep_nchw_io is for the keras, tf and tflite targets, not {target}")
        options["keep_nchw_io"] = True
    if preprocess not in (None, "none"):
        if target != "tf":
            raise InputError(f"preprocess is baked into TF SavedModels only (--to tf), not {target}")
        options["preprocess"] = preprocess
    return options


def save(obj, path: str | os.PathLike, *, source: str | None = None) -> Path:
    """Save any exported object in its framework's own format, atomically."""
    if isinstance(obj, ir.Model):
        from .exporters.onnx import save_onnx

        return save_onnx(obj, path)
    if hasattr(obj, "irbridge_values"):
        from .exporters.torch import save as save_torch

        return save_torch(obj, path, source)
    if type(obj).__module__.split(".")[0] == "keras":
        from .exporters.keras import save as save_keras

        return save_keras(obj, path)
    if isinstance(obj, bytes) and hasattr(obj, "irbridge_tflite"):
        from .exporters.tflite import save as save_tflite

        return save_tflite(obj, path)
    if hasattr(obj, "irbridge_info") and hasattr(obj, "signatures"):
        from .exporters.tf import save as save_tf

        return save_tf(obj, path)
    raise InputError(f"irbridge.save cannot save an object of type {type(obj).__name__}")


def verify(a, b, *, inputs=None, layerwise: bool = False, atol: float | None = None,
           rtol: float | None = None, max_error: float | None = None) -> VerificationReport:
    """Compare two models on the same seeded random inputs (DESIGN.md §6).

    `b` may be a `.tflite` path: it runs in the LiteRT interpreter against `a`; a quantized
    file's report carries `.accuracy` and passes unless an output's error exceeds `max_error`."""
    if isinstance(b, (str, os.PathLike)) and os.fspath(b).endswith(".tflite"):
        from .exporters.tflite.check_file import verify_file

        return verify_file(a, b, inputs=inputs, layerwise=layerwise, atol=atol, rtol=rtol, max_error=max_error)
    if max_error is not None:
        raise InputError("max_error applies to a quantized .tflite candidate")
    return _verify(a, b, inputs=inputs, layerwise=layerwise, atol=atol, rtol=rtol)


def convert(source, to: str, output=None, *, weights=None, passes=None, check: bool = True,
            inputs=None, atol: float | None = None, rtol: float | None = None,
            format: str | None = None, dump_dir=None, layout: str = "nchw",
            keep_nchw_io: bool = False, preprocess: str | None = None,
            trust_code: bool = False, random_weights: bool = False,
            trust_pickle: bool = False, dynamic=None, quantize: str | None = None, calibration=None,
            int8_io: bool = False, allow_flex: bool = False, max_error: float | None = None) -> ConversionResult:
    """load + normalize + export (+ verify) (+ save when `output` is given).

    `layout="nhwc"` (ONNX output only) gives channels-last image inputs and outputs with the
    fewest Transposes ONNX allows (the to-nhwc pass). The check compares the export with
    onnxruntime on the canonical graph; for ONNX output, with the graph as imported, which
    proves the passes. Every free dim is checked at two sizes (the report lists the shapes).
    On a verification failure nothing is written and VerificationError is raised.
    `inputs`/`dynamic`: as for `load`. tflite: `quantize`, `calibration`, `int8_io`, `allow_flex`,
    `max_error` as for `export`; a quantized export's accuracy report is `result.accuracy`.
    """
    if layout not in ("nchw", "nhwc"):
        raise InputError(f"layout {layout!r}: expected 'nchw' or 'nhwc'")
    if layout == "nhwc" and to != "onnx":
        raise InputError(f"layout='nhwc' is an ONNX output option; the {to} exporter chooses its own layout")
    tfl = _tflite_options(to, quantize, calibration, int8_io, allow_flex, max_error)
    t0 = time.perf_counter()
    tick = progress.current()
    tick.stage("importing")
    imported = load(source, weights, format=format, inputs=inputs, dynamic=dynamic, trust_code=trust_code,
                    trust_pickle=trust_pickle)
    if imported.metadata_props.get("irbridge.random_weights") == "true" and not random_weights:
        raise InputError(f"{source}: holds no weights (a prototxt alone); give the .caffemodel as WEIGHTS, "
                         "or pass random_weights=True (--random-weights) to convert the structure with "
                         "seeded random weights")
    t1 = time.perf_counter()
    steps = None if passes is None else list(passes)
    if layout == "nhwc":
        from . import passes as passes_mod

        steps = (passes_mod.DEFAULT_PIPELINE if steps is None else steps) + ["to-nhwc"]
    from .exporters.onnx import weights_bytes

    tick.stage("running the passes", weights=weights_bytes(imported))
    model = normalize(imported, steps, dump_dir=dump_dir)
    if check:
        tick.stage("running the reference (onnxruntime)")
    t2 = time.perf_counter()
    # the reference runs first and unmaps its weights: the export's copy never meets them in memory
    ref, failed = _reference(imported if to == "onnx" else model, None, check)
    t3 = time.perf_counter()
    tick.stage(f"exporting to {to}")
    exported = exporters.export_raw(model, to, **_options(to, keep_nchw_io, preprocess), **tfl)
    if failed is not None:  # what the exporter cannot convert is said first, then this
        raise failed
    t4 = time.perf_counter()
    if check:
        tick.stage(f"checking the {to} export")
    report, accuracy = _check(ref, exported, model, to, atol, rtol, max_error) if check else (None, None)
    t5 = time.perf_counter()
    seconds = {"import": t1 - t0, "passes": t2 - t1, "export": t4 - t3, "check": (t3 - t2) + (t5 - t4)}
    if report is not None and not report.ok:
        raise VerificationError(f"the {to} export does not match onnxruntime:\n{report}", report)
    out = None
    if output is not None:
        tick.stage(f"writing {output}")
        out = save(exported, output, source=_describe(source))
    seconds["total"] = time.perf_counter() - t0
    return ConversionResult(model, exported, report, out, seconds, accuracy)


def _reference(model, inputs, check: bool):
    """(the reference outputs for the check, or the error that computing them raised). The
    reference runs before the export so that the two never hold their weights at once."""
    if not check:
        return None, None
    try:
        return reference_run(model, inputs=inputs), None
    except Exception as e:  # noqa: BLE001 - raised after the export has had its say
        return None, e


def _all_shapes(d: dict) -> bool:
    return all(isinstance(v, (tuple, list)) and not hasattr(v, "dtype") for v in d.values())


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return type(source).__name__
