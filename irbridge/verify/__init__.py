"""Verification (DESIGN.md §6): reference runs, inputs at real sizes, comparison by dtype,
layerwise search, diagnosis and reports; one concern per module:

    inputs.py       what the check feeds: free dims at two sizes, integer ranges, memory budget
    runners.py      Runner, and the registry exporters add their models' runners to
    onnx_runner.py  running ONNX graphs on onnxruntime (whole, value by value, a layer alone)
    compare.py      elementwise comparison, each output at its own dtype's tolerance; hints
    check.py        verify(), reference_run(), verify_against()
    layerwise.py    every layer compared, the first divergence found
    diagnose.py     the classic porting mistakes tried on the first divergent layer
    report.py       Check, VerificationReport (to_dict, __str__, to_html via report_html.py)

`irbridge.verify` is both this package and the public function (DESIGN.md §2 and §4): the
module itself is callable.
"""

from __future__ import annotations

import os
import sys

from .check import Reference, reference_run, verify, verify_against
from .compare import compare, compare_outputs, hint, tolerance_of
from .inputs import check_budget, input_specs, integer_ranges, random_inputs, size_plans
from .onnx_runner import layer_outputs, onnx_runner, run_nodes
from .report import DEFAULT_ATOL_SCALE, DEFAULT_RTOL, Check, Divergence, VerificationReport
from .runners import Runner, module_runner, register_runner, runner_for

__all__ = [
    "DEFAULT_ATOL_SCALE", "DEFAULT_RTOL", "Check", "Divergence", "Reference", "Runner",
    "VerificationReport", "check_budget", "check_feeds", "compare", "compare_outputs", "hint",
    "input_specs", "integer_ranges", "layer_outputs", "module_runner", "onnx_runner",
    "random_inputs", "reference_run", "register_runner", "run_nodes", "runner_for", "size_plans",
    "tolerance_of", "verify", "verify_against",
]


def check_feeds(model, shapes=None, seed: int = 0) -> list[dict]:
    """The inputs a check of `model` (an onnx_ir.Model) runs: one dict per size (two when any
    dim is free), sizes the graph accepts (found on onnxruntime), integers in range."""
    return [feeds for feeds, _ in reference_run(model, inputs=shapes, seed=seed).runs]


class _CallableModule(type(os)):
    """`irbridge.verify(a, b)` once this package is imported (which shadows the API function):
    the API's verify, which also takes a .tflite path."""

    def __call__(self, *args, **kwargs):
        from ..api import verify as api_verify

        return api_verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
