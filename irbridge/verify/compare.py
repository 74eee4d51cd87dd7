"""Elementwise comparison by DESIGN.md §6, each tensor held to its own dtype's precision, and the
hint: a likely cause of a mismatch judged from the two tensors alone.

    fp32 (and wider): |b - a| <= 1e-5 * max(1, max|a|) + 1e-4 * |a|
    fp16:             |b - a| <= 5e-3 * max(1, max|a|) + 5e-3 * |a|
    bf16:             |b - a| <= 4e-2 * max(1, max|a|) + 4e-2 * |a|
    integers, bools:  exact;   NaN and inf: in the same places
"""

from __future__ import annotations

import itertools

import numpy as np

from .report import Check, Divergence, VerificationReport

# tolerance rule -> (atol scale, rtol)
TOLERANCES = {"fp32": (1e-5, 1e-4), "fp16": (5e-3, 5e-3), "bf16": (4e-2, 4e-2)}


def tolerance_of(dtype) -> str:
    """The rule for a tensor of this dtype: the lower precision of the two sides decides."""
    name = np.dtype(dtype).name
    if name == "bfloat16":
        return "bf16"
    if name == "float16":
        return "fp16"
    return "fp32"


def compare(name: str, ref: np.ndarray, got: np.ndarray, atol: float | None = None,
            rtol: float | None = None) -> Check:
    """Elementwise comparison by DESIGN.md §6 (integers and bools exact, NaN/inf in place)."""
    ref, got = np.asarray(ref), np.asarray(got)
    rule = "given" if atol is not None or rtol is not None else _rule(ref, got)
    scale, default_rtol = TOLERANCES.get(rule if rule != "given" else _rule(ref, got), TOLERANCES["fp32"])
    rtol = default_rtol if rtol is None else rtol
    if ref.shape != got.shape:
        return Check(name, float("inf"), float("inf"), False, atol or 0.0,
                     note=f"shape {got.shape} != reference {ref.shape}", tolerance=rule, rtol=rtol)
    if ref.size == 0:
        return Check(name, 0.0, 0.0, True, atol or 0.0, tolerance=rule, rtol=rtol)
    if ref.dtype.kind in "biuUSO" or got.dtype.kind in "biu":
        diff = (ref != got) if ref.dtype.kind in "bUSO" else np.abs(ref.astype(np.float64) - got.astype(np.float64))
        max_abs = float(np.max(diff))
        return Check(name, max_abs, max_abs, max_abs == 0, 0.0, tolerance="exact", rtol=0.0)
    r, g = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(r)
    same_special = np.array_equal(np.isnan(r), np.isnan(g)) and np.array_equal(
        np.where(np.isinf(r), r, 0), np.where(np.isinf(g), g, 0))
    r_f, g_f = r[finite], g[finite]
    if r_f.size == 0:
        return Check(name, 0.0, 0.0, same_special, atol or 0.0, tolerance=rule, rtol=rtol)
    eff_atol = atol if atol is not None else scale * max(1.0, float(np.max(np.abs(r_f))))
    err = np.abs(g_f - r_f)
    err = np.where(np.isnan(err), np.inf, err)
    max_abs = float(np.max(err))
    max_rel = float(np.max(err / np.maximum(np.abs(r_f), 1e-12)))
    ok = bool(np.all(err <= eff_atol + rtol * np.abs(r_f))) and same_special
    return Check(name, max_abs, max_rel, ok, eff_atol, tolerance=rule, rtol=rtol)


def _rule(ref: np.ndarray, got: np.ndarray) -> str:
    rules = {tolerance_of(ref.dtype), tolerance_of(got.dtype)}
    return "bf16" if "bf16" in rules else "fp16" if "fp16" in rules else "fp32"


def compare_outputs(out_a: dict, out_b: dict, atol=None, rtol=None, first_divergence: bool = True) -> VerificationReport:
    """The report of outputs `out_b` against reference outputs `out_a` (matched in order)."""
    from ..errors import InputError

    names_a, names_b = list(out_a), list(out_b)
    if len(names_a) != len(names_b):
        raise InputError(f"the models have different numbers of outputs ({len(names_a)} vs {len(names_b)})")
    checks = [compare(nb, out_a[na], out_b[nb], atol, rtol) for na, nb in zip(names_a, names_b)]
    report = VerificationReport(all(c.ok for c in checks), atol, rtol, checks)
    if first_divergence and not report.ok:
        i = next(i for i, c in enumerate(checks) if not c.ok)
        report.first_divergence = Divergence(checks[i].name, checks[i].max_abs, checks[i].max_rel,
                                             hint(out_a[names_a[i]], out_b[names_b[i]]))
    return report


def hint(ref: np.ndarray, got: np.ndarray) -> str | None:
    """A likely cause of a mismatch, judged from the two tensors alone."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    if ref.shape != got.shape:
        if ref.size == got.size:
            return (f"same number of elements, shape {got.shape} vs {ref.shape}: a layout "
                    "(NCHW/NHWC) or flatten-order difference")
        return f"shape {got.shape} vs reference {ref.shape}"
    if ref.size < 2 or not np.all(np.isfinite(got)):
        return None if np.all(np.isfinite(got)) else "non-finite values where the reference has none"
    close = lambda a, b: np.allclose(a, b, rtol=1e-3, atol=1e-5 * max(1.0, np.abs(b).max()))  # noqa: E731
    if ref.ndim >= 3:
        for perm in itertools.permutations(range(1, ref.ndim)):
            perm = (0,) + perm
            if perm != tuple(range(ref.ndim)) and got.shape == ref.transpose(perm).shape \
                    and close(got, ref.transpose(perm)):
                return f"the values are the reference's with axes permuted {perm}: a layout (NCHW/NHWC) mix-up"
    if close(np.sort(got, axis=None), np.sort(ref, axis=None)):
        return ("the same values in a different order: a layout or flatten-order permutation "
                "(a Dense/InnerProduct after a Flatten needs its weight rows permuted)")
    if ref.ndim >= 3:
        axes = tuple(range(2, ref.ndim))
        delta = got - ref
        if close(delta, delta.mean(axis=axes, keepdims=True)) and np.abs(delta).max() > 0:
            return "a per-channel offset: a bias, mean subtraction or BatchNorm statistic differs"
    nz = np.abs(ref) > 1e-6
    if nz.sum() > 1:
        ratio = got[nz] / ref[nz]
        if np.allclose(ratio, ratio.mean(), rtol=1e-3) and abs(ratio.mean() - 1) > 1e-3:
            return f"outputs are {ratio.mean():.4g}x the reference: a scale (input scaling, LRN alpha/size convention, BatchNorm scale factor)"
    delta = got - ref
    if np.allclose(delta, delta.mean(), rtol=1e-3, atol=1e-6) and abs(delta.mean()) > 0:
        return f"a constant offset of {delta.mean():.4g}: mean subtraction or a bias"
    if (ref < 0).any() and not (got < 0).any():
        return "no negative values where the reference has some: an extra ReLU, or a clamp"
    return None
