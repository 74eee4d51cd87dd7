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
           preprocess: str | None = None):
    """Export a canonical graph to `target` ("onnx", "torch", "keras", "tf"); verified against
    onnxruntime unless check=False (raises VerificationError on a mismatch).

    keras/tf: channels-last throughout, NHWC interfaces unless `keep_nchw_io`; tf: `preprocess`
    ("caffe-bgr-mean") bakes RGB->BGR and mean subtraction into the signatures."""
    ref, failed = _reference(model, inputs, check and target != "onnx")  # first: see convert()
    exported = exporters.export_raw(model, target, **_options(target, keep_nchw_io, preprocess))
    if failed is not None:
        raise failed
    check = ref is not None
    if check:
        report = verify_against(ref, exported, atol=atol, rtol=rtol)
        if not report.ok:
            raise VerificationError(f"the {target} export does not match onnxruntime:\n{report}", report)
    return exported


def _options(target: str, keep_nchw_io: bool, preprocess: str | None) -> dict:
    options = {}
    if keep_nchw_io:
        if target not in ("keras", "tf"):
            raise InputError(f"keep_nchw_io is for the keras and tf targets, not {target}")
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
    if hasattr(obj, "irbridge_info") and hasattr(obj, "signatures"):
        from .exporters.tf import save as save_tf

        return save_tf(obj, path)
    raise InputError(f"irbridge.save cannot save an object of type {type(obj).__name__}")


def verify(a, b, *, inputs=None, layerwise: bool = False, atol: float | None = None,
           rtol: float | None = None) -> VerificationReport:
    """Compare two models on the same seeded random inputs (DESIGN.md §6)."""
    return _verify(a, b, inputs=inputs, layerwise=layerwise, atol=atol, rtol=rtol)


def convert(source, to: str, output=None, *, weights=None, passes=None, check: bool = True,
            inputs=None, atol: float | None = None, rtol: float | None = None,
            format: str | None = None, dump_dir=None, layout: str = "nchw",
            keep_nchw_io: bool = False, preprocess: str | None = None,
            trust_code: bool = False, random_weights: bool = False,
            trust_pickle: bool = False, dynamic=None) -> ConversionResult:
    """load + normalize + export (+ verify) (+ save when `output` is given).

    `layout="nhwc"` (ONNX output only) gives channels-last image inputs and outputs with the
    fewest Transposes ONNX allows (the to-nhwc pass). The check compares the export with
    onnxruntime on the canonical graph; for ONNX output, with the graph as imported, which
    proves the passes. Every free dim is checked at two sizes (the report lists the shapes).
    On a verification failure nothing is written and VerificationError is raised.
    `inputs`/`dynamic`: as for `load`.
    """
    if layout not in ("nchw", "nhwc"):
        raise InputError(f"layout {layout!r}: expected 'nchw' or 'nhwc'")
    if layout == "nhwc" and to != "onnx":
        raise InputError(f"layout='nhwc' is an ONNX output option; the {to} exporter chooses its own layout")
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
    exported = exporters.export_raw(model, to, **_options(to, keep_nchw_io, preprocess))
    if failed is not None:  # what the exporter cannot convert is said first, then this
        raise failed
    t4 = time.perf_counter()
    if check:
        tick.stage(f"checking the {to} export")
    report = verify_against(ref, exported, atol=atol, rtol=rtol) if check else None
    t5 = time.perf_counter()
    seconds = {"import": t1 - t0, "passes": t2 - t1, "export": t4 - t3, "check": (t3 - t2) + (t5 - t4)}
    if report is not None and not report.ok:
        raise VerificationError(f"the {to} export does not match onnxruntime:\n{report}", report)
    out = None
    if output is not None:
        tick.stage(f"writing {output}")
        out = save(exported, output, source=_describe(source))
    seconds["total"] = time.perf_counter() - t0
    return ConversionResult(model, exported, report, out, seconds)


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
