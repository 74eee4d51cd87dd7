"""What a verification found: one `Check` per compared tensor, gathered in a `VerificationReport`."""

from __future__ import annotations

import dataclasses

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL_SCALE = 1e-5


@dataclasses.dataclass
class Check:
    """One compared tensor: a model output or a layer's output. `tolerance` names the rule that
    applied: "fp32", "fp16", "bf16" (DESIGN.md §6, by the reference's dtype), "exact" (integers
    and bools) or "given" (atol/rtol passed by the caller)."""

    name: str
    max_abs: float
    max_rel: float
    ok: bool
    atol: float
    local_max_abs: float | None = None  # layerwise: error of the layer fed the reference's inputs
    note: str | None = None
    tolerance: str = "fp32"
    rtol: float = DEFAULT_RTOL

    def to_dict(self) -> dict:
        d = {"name": self.name, "max_abs": self.max_abs, "max_rel": self.max_rel, "ok": self.ok,
             "tolerance": self.tolerance, "atol": self.atol, "rtol": self.rtol}
        if self.local_max_abs is not None:
            d["local_max_abs"] = self.local_max_abs
        if self.note:
            d["note"] = self.note
        return d

    def worst(self, other: Check) -> Check:
        """The same tensor checked at another size: the larger errors, ok only if both were."""
        return dataclasses.replace(
            self, max_abs=max(self.max_abs, other.max_abs), max_rel=max(self.max_rel, other.max_rel),
            ok=self.ok and other.ok, atol=max(self.atol, other.atol), note=self.note or other.note)


@dataclasses.dataclass
class Divergence:
    layer: str
    max_abs: float
    max_rel: float
    hint: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VerificationReport:
    ok: bool
    atol: float | None  # None: the default, scaled per output by its dtype (DESIGN.md §6)
    rtol: float | None  # None: the default of each output's dtype
    outputs: list[Check]
    layers: list[Check] = dataclasses.field(default_factory=list)
    first_divergence: Divergence | None = None
    shapes: list[dict] = dataclasses.field(default_factory=list)  # {input: shape} of each run
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. a dim checked at one size only

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for c in self.outputs), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for c in self.outputs), default=0.0)

    @property
    def tolerance(self) -> str:
        """The rule(s) applied, e.g. "fp32" or "fp16"."""
        return ",".join(dict.fromkeys(c.tolerance for c in self.outputs)) or "fp32"

    def to_dict(self) -> dict:
        d = {
            "ok": self.ok,
            "atol": self.atol if self.atol is not None else _default_atol(self.outputs),
            "rtol": self.rtol if self.rtol is not None else max((c.rtol for c in self.outputs),
                                                                  default=DEFAULT_RTOL),
            "tolerance": self.tolerance,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "shapes": [{k: list(v) for k, v in s.items()} for s in self.shapes],
            "outputs": [c.to_dict() for c in self.outputs],
            "layers": [c.to_dict() for c in self.layers],
            "first_divergence": self.first_divergence.to_dict() if self.first_divergence else None,
        }
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    def to_html(self, title: str = "irbridge verification") -> str:
        """One self-contained HTML page: per-layer error plot (log scale) and the tables."""
        from .report_html import to_html

        return to_html(self, title)

    def __str__(self) -> str:
        atol = f"{self.atol:g}" if self.atol is not None else _atol_rule(self.tolerance)
        rtol = f"{self.rtol:g}" if self.rtol is not None else _rtol_rule(self.tolerance)
        head = "MATCH" if self.ok else "MISMATCH"
        lines = [f"verification: {head} (atol={atol}, rtol={rtol})"]
        accuracy = getattr(self, "accuracy", None)  # a quantized .tflite: measured, not held to §6
        if accuracy is not None:
            head, rule = quantized_rule(accuracy, self.ok)
            lines = [f"verification: {head} ({rule})"]
        if self.shapes:
            lines.append("  checked at: " + "; ".join(
                ", ".join(f"{k} {'x'.join(map(str, v)) or 'scalar'}" for k, v in s.items()) for s in self.shapes))
        for c in self.outputs:
            lines.append(f"  output {c.name}: max_abs={c.max_abs:.3g} max_rel={c.max_rel:.3g} "
                         f"{'ok' if c.ok else 'FAIL'}" + (f" ({c.note})" if c.note else ""))
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.layers:
            bad = sum(not c.ok for c in self.layers)
            lines.append(f"  layers compared: {len(self.layers)}, over tolerance: {bad}")
        if self.first_divergence:
            d = self.first_divergence
            lines.append(f"  first divergence: layer {d.layer} (max_abs={d.max_abs:.3g}, max_rel={d.max_rel:.3g})")
            if d.hint:
                lines.append(f"  hint: {d.hint}")
        return "\n".join(lines)


def quantized_rule(accuracy: dict, ok: bool) -> tuple[str, str]:
    """(status, what applied) for a quantized export's report: no tolerance, or --max-error."""
    q = accuracy.get("quantize") or "quantized"
    if accuracy.get("max_error") is None:
        return "MEASURED", f"quantized {q}: accuracy measured, no pass/fail"
    return ("MATCH" if ok else "MISMATCH"), f"quantized {q}: every output's max_abs <= {accuracy['max_error']:g} (--max-error)"


_ATOL_RULES = {"fp16": "5e-3*max(1,max|ref|)", "bf16": "4e-2*max(1,max|ref|)", "exact": "0"}
_RTOL_RULES = {"fp16": "5e-3", "bf16": "4e-2", "exact": "0"}


def _atol_rule(tolerance: str) -> str:
    return ",".join(_ATOL_RULES.get(t, "1e-5*max(1,max|ref|)") for t in tolerance.split(","))


def _rtol_rule(tolerance: str) -> str:
    return ",".join(_RTOL_RULES.get(t, f"{DEFAULT_RTOL:g}") for t in tolerance.split(","))


def _default_atol(outputs: list[Check]) -> float:
    """The scale of the default atol (1e-5 for fp32, 5e-3 for fp16, 4e-2 for bf16), as the JSON says."""
    from .compare import TOLERANCES

    return max((TOLERANCES[c.tolerance][0] for c in outputs if c.tolerance in TOLERANCES),
               default=DEFAULT_ATOL_SCALE)


def merge(reports: list[VerificationReport]) -> VerificationReport:
    """One report for the same comparison run at several sizes: per output the worst error."""
    first = reports[0]
    outputs = list(first.outputs)
    for r in reports[1:]:
        outputs = [a.worst(b) for a, b in zip(outputs, r.outputs)]
    merged = dataclasses.replace(first, ok=all(r.ok for r in reports), outputs=outputs,
                                 shapes=[s for r in reports for s in r.shapes],
                                 notes=list(dict.fromkeys(n for r in reports for n in r.notes)))
    merged.first_divergence = next((r.first_divergence for r in reports if r.first_divergence), None)
    return merged
