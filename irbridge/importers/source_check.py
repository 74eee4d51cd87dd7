"""The import check: an imported graph must compute what the source framework computes
(DESIGN.md §1), at the check's sizes (two of every free dim), recorded in the model's
`irbridge.import_check` metadata; a mismatch raises VerificationError."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from ..errors import VerificationError


def check_against_source(model: ir.Model, framework: str, run, specs=None) -> None:
    """Run the imported graph (onnxruntime) and the source (`run(list of arrays, in graph input
    order)`) on the same seeded inputs, at two sizes of every free dim (the check's plan: batch 2
    and 3, other free dims at two lengths); record the result in `irbridge.import_check` and
    raise VerificationError on a mismatch. (`specs` is no longer read: the graph gives the shapes.)"""
    from ..verify import Runner, reference_run, verify_against

    ref = reference_run(model, seed=0)
    names_out = [v.name for v in model.graph.outputs]

    def source(feeds):
        out = run([feeds[n] for n in ref.input_names])
        out = list(out.values()) if isinstance(out, dict) else out
        out = out if isinstance(out, (list, tuple)) else [out]
        return {n: np.asarray(o) for n, o in zip(names_out, out)}

    report = verify_against(ref, Runner(ref.input_names, names_out, source))
    if not report.ok and any("failed to run" in (c.note or "") for c in report.outputs):
        report = _sizes_the_source_takes(model, ref.input_names, names_out, source)
    summary = ", ".join(f"{c.name}: max_abs={c.max_abs:.3g}" for c in report.outputs)
    ran = "; ".join(", ".join(f"{n}={'x'.join(map(str, s))}" for n, s in shape.items()) for shape in report.shapes)
    model.metadata_props["irbridge.import_check"] = (f"{framework}: {'ok' if report.ok else 'MISMATCH'} "
                                                     f"({summary}) at {ran}")
    if not report.ok:
        raise VerificationError(f"the imported ONNX graph differs from {framework} itself "
                                f"(inputs {ran}):\n{report}", report)


def _sizes_the_source_takes(model: ir.Model, input_names, output_names, source):
    """The check again where the source rejects the sizes onnxruntime took (Keras's DenseNet121
    with free sides raises at 8x8, where the graph still runs): the source picks the two sizes,
    smallest first, and onnxruntime is compared with it there."""
    from ..verify import Runner, reference_run, runner_for, verify_against

    graph = runner_for(model)
    try:
        ref = reference_run(Runner(input_names, output_names, source, specs=graph.specs), seed=0)
        return verify_against(ref, graph)
    finally:
        if graph.close is not None:
            graph.close()
