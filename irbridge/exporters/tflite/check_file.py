"""`irbridge verify SRC model.tflite`: a .tflite file on disk run in LiteRT against onnxruntime.

    float32 file   -> pass/fail by DESIGN.md §6 (two sizes per free dim), as any export
    quantized file -> the accuracy report (per output, per layer where the file carries
                      irbridge's notes); no pass/fail unless `max_error` is given

The reference is SRC loaded and normalized as `convert` does, so that the layer tensors the
file's notes name are the canonical graph's values. The file is read by tflite_file.read:
LiteRT's builtin kernels only, a damaged file is an InputError naming it.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError


def verify_file(source, path, *, inputs=None, layerwise: bool = False, atol: float | None = None,
                rtol: float | None = None, max_error: float | None = None, **load_options):
    """VerificationReport of the .tflite at `path` against `source` (anything irbridge.load takes);
    a quantized file's report carries `.accuracy` (irbridge.verify.quantized's dict)."""
    from ... import api
    from ...verify import reference_run, runner_for
    from .tflite_file import read

    model = api.load(source, **load_options)
    model = api.normalize(model)
    flat = read(path, reference=model)
    meta = flat.irbridge_tflite
    if max_error is not None and meta["quantize"] is None:
        raise InputError(f"--max-error: {Path(path).name} is a float32 .tflite, held to DESIGN tolerances; "
                         "--max-error applies to quantized files (float16, int8)")
    ref = reference_run(model, inputs=inputs)
    report, _ = api._check(ref, flat, model, "tflite", atol, rtol, max_error)
    if layerwise and meta["quantize"] is None and meta["layers"]:
        from ...verify.layerwise import layerwise as compare_layers

        compare_layers(report, runner_for(model), runner_for(flat), ref.feeds, atol, rtol)
    if not meta.get("embedded"):
        report.notes.append(f"{Path(path).name} carries no irbridge notes (another converter's file): "
                            "interfaces matched by shape; no per-layer comparison")
    return report
