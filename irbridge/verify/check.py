"""verify(a, b): run a reference and a candidate on the same inputs at real sizes and compare.

The reference runs first (`reference_run`), at the sizes `inputs.size_plans` proposes, and keeps
its inputs and outputs; the candidate then runs on the same inputs (`verify_against`). A
candidate that raises at some size fails the check with the error in the report: a model that
is right at one size and crashes at another is not verified.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from ..errors import InputError
from .compare import compare_outputs
from .inputs import checked_shape, feeds_for, free_labels, integer_ranges, size_plans
from .report import Check, Divergence, VerificationReport, merge
from .runners import Runner, runner_for


@dataclasses.dataclass
class Reference:
    """A reference model's outputs on the check's inputs, computed once per size: convert runs
    it before the export, then unmaps the reference's weights, so the two never share the peak."""

    runs: list[tuple[dict, dict]]  # (feeds, outputs) per size
    input_names: list
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def feeds(self) -> dict:
        return self.runs[0][0]

    @property
    def outputs(self) -> dict:
        return self.runs[0][1]

    @property
    def shapes(self) -> list[dict]:
        return [{n: tuple(np.shape(a)) for n, a in feeds.items()} for feeds, _ in self.runs]


def verify(a, b, *, inputs=None, layerwise: bool = False, atol: float | None = None,
           rtol: float | None = None, seed: int = 0) -> VerificationReport:
    """Run reference `a` and candidate `b` on the same inputs and compare (DESIGN.md §6).

    `inputs`: {name: array} (or a tuple/list in input order) to use as they are, {name: shape} for
    seeded random values of that shape, or None: seeded random values, each free dim at two sizes.
    """
    ra = runner_for(a)
    rb = runner_for(b, ra.input_names)
    if not isinstance(a, Runner) and ra.specs is None and rb.specs is not None:
        ra = runner_for(a, rb.input_names)
    ref = _reference(ra, ra if ra.specs else rb, inputs, seed)
    if not layerwise and ra.close is not None:
        ra.close()
    report = verify_against(ref, rb, atol, rtol, first_divergence=not layerwise)
    if layerwise:
        from .layerwise import layerwise as compare_layers

        compare_layers(report, ra, rb, ref.feeds, atol, rtol)
    return report


def reference_run(a, inputs=None, seed: int = 0) -> Reference:
    """The reference's outputs at the check's sizes (its weights unmapped afterwards)."""
    ra = runner_for(a)
    ref = _reference(ra, ra, inputs, seed)
    if ra.close is not None:
        ra.close()
    if isinstance(a, ir.Model):
        from .._io import release_mapped

        release_mapped(a.graph.initializers.values())
    return ref


def verify_against(ref: Reference, b, atol=None, rtol=None, first_divergence: bool = True) -> VerificationReport:
    """Run candidate `b` on each of the reference's inputs and compare with its outputs."""
    rb = runner_for(b, ref.input_names)
    reports = []
    for feeds, outputs in ref.runs:
        try:
            got = rb.run(feeds)
        except Exception as e:  # noqa: BLE001 - a candidate that crashes at a size fails the check there
            reports.append(_crashed(outputs, feeds, e))
            continue
        report = compare_outputs(outputs, got, atol, rtol, first_divergence)
        report.shapes = [{n: tuple(np.shape(x)) for n, x in feeds.items()}]
        reports.append(report)
    merged = merge(reports)
    merged.notes = list(dict.fromkeys(ref.notes + merged.notes))
    return merged


def _crashed(outputs: dict, feeds: dict, e: Exception) -> VerificationReport:
    shapes = {n: tuple(np.shape(x)) for n, x in feeds.items()}
    at = ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in shapes.items())
    why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    checks = [Check(n, float("inf"), float("inf"), False, 0.0, note=f"failed to run at {at}: {why}")
              for n in outputs]
    first = checks[0].name if checks else "(model)"
    return VerificationReport(False, None, None, checks, shapes=[shapes],
                              first_divergence=Divergence(first, float("inf"), float("inf"),
                                                          f"the model raised {why} at {at}"))


def _reference(ra: Runner, spec_runner: Runner, inputs, seed: int) -> Reference:
    """Run `ra` at the sizes the inputs or the plans give; the first plan that runs wins."""
    if inputs is not None and not isinstance(inputs, dict):  # example arrays in input order
        inputs = dict(zip(ra.input_names or spec_runner.input_names, inputs))
    if inputs is not None and inputs and all(hasattr(v, "shape") and hasattr(v, "dtype") for v in inputs.values()):
        feeds = {k: np.asarray(v) for k, v in inputs.items()}
        runs = [(feeds, _run(ra, feeds))]
        return Reference(runs, ra.input_names, constant_outputs(runs))
    specs = spec_runner.specs
    if specs is None:
        raise InputError("no input shapes known; pass inputs={name: shape}")
    shapes = dict(inputs or {})
    specs = [(n, checked_shape(n, shapes[n], s) if n in shapes else s, d) for n, s, d in specs]
    model = spec_runner.model
    ranges = integer_ranges(model)
    first_error, tried, ran = None, [], None
    for plan in size_plans(specs, model):
        runs = []
        try:
            for k, shape in enumerate(plan.shapes):
                feeds = feeds_for(specs, shape, seed + k, ranges)
                runs.append((feeds, _run(ra, feeds)))
        except _RunFailed as e:
            first_error = first_error or e.error
            tried.append(plan.shapes[len(runs)])
            continue
        found = Reference(runs, ra.input_names, ([plan.note] if plan.note else []) + constant_outputs(runs))
        if _finite(runs):
            return found
        ran = ran or found  # NaN at these sizes (a pooled map of size 0): a larger size may run clean
    if ran is not None:
        return ran
    labels = free_labels(specs)
    if not labels:
        raise _cannot_run(first_error) from first_error
    names = ", ".join(f"{label} ({name} axis {axis})" for label, (name, axis) in labels.items())
    example = next(iter(labels.values()))[0]
    raise InputError(f"the check found no sizes at which the reference runs for the free dims {names} "
                     f"(tried {len(tried)} sizes, from {_fmt(tried[0])}); give the shapes with "
                     f"--input {example}:D1,D2,... (inputs={{{example!r}: shape}}). First error: "
                     f"{_first_line(first_error)}") from first_error


def _finite(runs: list[tuple[dict, dict]]) -> bool:
    """No NaN or infinity in any float output of any run."""
    return all(np.isfinite(a).all() for _, outputs in runs for a in map(np.asarray, outputs.values())
               if a.dtype.kind == "f")


def constant_outputs(runs: list[tuple[dict, dict]]) -> list[str]:
    """Notes for float outputs that hold one value for every input the check used: comparing
    them cannot tell a right model from a wrong one (a zero-initialised head, a dead branch)."""
    notes = []
    for name in runs[0][1]:
        arrays = [np.asarray(outputs[name]) for _, outputs in runs]
        if not all(a.dtype.kind == "f" for a in arrays) or sum(a.size for a in arrays) < 2:
            continue
        first = arrays[0].flat[0]
        if all(np.all(a == first) for a in arrays):
            notes.append(f"output {name!r} is {first:g} everywhere on the check's inputs: matching it proves "
                         "nothing (are the weights all zero, or the output cut off from the inputs?)")
    return notes


class _RunFailed(Exception):
    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _run(ra: Runner, feeds: dict) -> dict:
    try:
        outputs = ra.run(feeds)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - the size may be wrong for the graph: the caller tries another
        raise _RunFailed(e) from e
    empty = [n for n, o in outputs.items() if np.size(o) == 0]
    if empty and all(np.size(x) for x in feeds.values()):  # e.g. a pool left with a 0x0 map
        raise _RunFailed(ValueError(f"output {empty[0]!r} is empty at these sizes"))
    return outputs


def _cannot_run(e: Exception) -> Exception:
    if type(e).__module__.startswith("onnxruntime"):
        return InputError(f"onnxruntime cannot run the graph the check compares against: "
                          f"{_first_line(e)} (--no-check skips the check)")
    return e


def _first_line(e) -> str:
    return str(e).splitlines()[0] if e is not None and str(e) else type(e).__name__


def _fmt(shapes: dict) -> str:
    return ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in shapes.items())
