"""Layerwise search: compare every source layer's output and find the first that diverges.

Each layer is reported with its accumulated error (the candidate run on its own values) and,
where the candidate can be fed, its local error (the layer fed the reference's inputs). The
first layer over tolerance is diagnosed (diagnose.py) for the classic porting mistakes.
"""

from __future__ import annotations

from ..errors import InputError
from .compare import compare, hint
from .report import Divergence, VerificationReport
from .runners import Runner


def layerwise(report: VerificationReport, ra: Runner, rb: Runner, feeds, atol, rtol) -> None:
    """Compare every layer of the candidate's layer map with the reference's value of the same
    name (or, for another lineage of graph, the reference's value for the same layer)."""
    if ra.values is None or rb.values is None:
        raise InputError("layerwise comparison needs both sides to be ONNX graphs or irbridge exports")
    ref_values = ra.values(feeds)  # one reference run serves both the layers and local feeding
    got_values = rb.values(feeds)
    local = rb.values(feeds, ref_values) if rb.local else {}
    for layer, v in (rb.layer_map or ra.layer_map or {}).items():
        ref_v = v if v in ref_values else (ra.layer_map or {}).get(layer)
        if ref_v not in ref_values or v not in got_values:
            continue
        ref = ref_values[ref_v]
        c = compare(layer, ref, got_values[v], atol, rtol)
        if v in local:
            c.local_max_abs = compare(layer, ref, local[v], atol, rtol).max_abs
        report.layers.append(c)
        if not c.ok and report.first_divergence is None:
            why = None
            if rb.model is not None:  # try the classic mistakes on this layer
                from .diagnose import diagnose

                why = diagnose(rb.model, layer, v, {**feeds, **got_values}, ref,
                               lambda out, ref=ref, layer=layer: compare(layer, ref, out, atol, rtol).ok)
            report.first_divergence = Divergence(layer, c.max_abs, c.max_rel, why or hint(ref, got_values[v]))
    if report.first_divergence is None and not report.ok:
        bad = next(c for c in report.outputs if not c.ok)
        report.first_divergence = Divergence(bad.name, bad.max_abs, bad.max_rel, None)
