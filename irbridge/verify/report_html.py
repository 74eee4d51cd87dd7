"""A verification report as one self-contained HTML page: per-layer error plot + output table.

The plot is inline SVG (no scripts, no external files): each compared layer along x, its error on
a log scale along y: the accumulated error (the layer run on the candidate's own inputs) and the
local error (fed the reference's inputs, where the candidate can be fed), the tolerance as a
dashed line, the first divergent layer marked in red with its hint.
"""

from __future__ import annotations

import html
import math

WORST_ROW = " class='worst'"
FLOOR = 1e-12  # errors of 0 are drawn here
W, H, LEFT, RIGHT, TOP, BOTTOM = 900, 360, 70, 20, 20, 110

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; } .ok { color: #1a7f37; } .fail { color: #cf222e; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-family: monospace; }
.hint { background: #fff8c5; padding: .6em 1em; border-left: 4px solid #d4a72c; }
tr.worst td { background: #ffebe9; font-weight: bold; } .bar { background: #0969da; height: 10px; }
tr.worst .bar { background: #cf222e; }
svg text { font: 11px sans-serif; }
"""


def to_html(report, title: str = "irbridge verification") -> str:
    """The report (an irbridge.verify.VerificationReport) as an HTML page; a quantized export's
    report (`report.accuracy`) gets the accuracy page instead (quantized_html)."""
    if getattr(report, "accuracy", None) is not None:
        return quantized_html(report, title)
    status = '<span class="ok">MATCH</span>' if report.ok else '<span class="fail">MISMATCH</span>'
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}: {status}</h1>",
             f"<p>Tolerance: |candidate - reference| &le; atol + rtol&middot;|reference|, "
             f"rtol = {_rtol(report)}, atol = {_atol(report)}.</p>"]
    d = report.first_divergence
    if d is not None:
        parts.append(f"<p class='hint'><b>First divergence: {html.escape(d.layer)}</b> "
                     f"(max_abs {d.max_abs:.3g}, max_rel {d.max_rel:.3g})"
                     + (f"<br>{html.escape(d.hint)}" if d.hint else "") + "</p>")
    if report.layers:
        parts.append("<h2>Error per layer</h2>" + _plot(report))
    parts.append("<h2>Outputs</h2>" + _table(report.outputs, local=False))
    if report.layers:
        parts.append("<h2>Layers</h2>" + _table(report.layers, local=True))
    parts.append("</body></html>")
    return "\n".join(parts)


def quantized_html(report, title: str) -> str:
    """The accuracy report of a quantized export: per output, then per layer (the error each layer
    adds, as a bar), the layer that adds the most highlighted. Numbers as in the JSON's "accuracy"."""
    from .report import quantized_rule

    acc = report.accuracy
    head, rule = quantized_rule(acc, report.ok)
    cls = "fail" if head == "MISMATCH" else "ok"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}: <span class='{cls}'>{head}</span></h1>",
             f"<p>{html.escape(rule)}. Measured against onnxruntime over {acc['samples']} samples "
             "(the check's inputs, then calibration samples where the export had them).</p>"]
    parts.extend(f"<p class='hint'>{html.escape(n)}</p>" for n in report.notes)
    if acc.get("worst"):
        parts.append(f"<p class='hint'><b>Worst layer: {html.escape(acc['worst'])}</b> adds the most error "
                     "(channel-relative: each channel's error relative to that channel's range, averaged)</p>")
    limit = acc.get("max_error")
    rows = []
    for o in acc["outputs"]:
        mark = "" if limit is None else (" <span class='ok'>ok</span>" if o["max_abs"] <= limit
                                         else " <span class='fail'>over --max-error</span>")
        rows.append(f"<tr><td>{html.escape(o['name'])}</td><td class='num'>{_num(o['max_abs'])}{mark}</td>"
                    f"<td class='num'>{_num(o['rel_error'])}</td><td class='num'>{_num(o.get('channel_error'))}</td>"
                    f"<td class='num'>{_cos(o['cosine'])}</td><td class='num'>{_num(o.get('top1'))}</td></tr>")
    parts.append("<h2>Outputs</h2><table><tr><th>output</th><th>max_abs</th><th>rel_error</th>"
                 "<th>channel_error</th><th>cosine</th><th>top-1 agreement</th></tr>" + "".join(rows) + "</table>")
    if acc["layers"]:
        top = max((max(r["added"], 0.0) for r in acc["layers"] if r["added"] is not None), default=0.0) or 1.0
        rows = []
        for r in acc["layers"]:
            worst = r["layer"] == acc.get("worst")
            width = 0 if r["added"] is None else max(r["added"], 0.0) / top * 200
            rows.append(f"<tr{WORST_ROW if worst else ''}><td>{html.escape(r['layer'])}</td>"
                        f"<td>{html.escape(r['op'] or '?')}</td><td class='num'>{_num(r['max_abs'])}</td>"
                        f"<td class='num'>{_num(r['rel_error'])}</td><td class='num'>{_num(r['channel_error'])}</td>"
                        f"<td class='num'>{_cos(r['cosine'])}</td><td class='num'>{_num(r['added'])}</td>"
                        f"<td><div class='bar' style='width:{width:.0f}px'></div></td></tr>")
        parts.append("<h2>Layers</h2><p>Each layer's output compared with the reference's (matched by source "
                     "layer name); <i>added</i>: its channel_error minus the largest of its nearest upstream "
                     "layers'.</p><table><tr><th>layer</th><th>op</th><th>max_abs</th><th>rel_error</th>"
                     "<th>channel_error</th><th>cosine</th><th>added</th><th></th></tr>" + "".join(rows) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _cos(x) -> str:
    return "" if x is None else f"{x:.5f}"


def _atol(report) -> str:
    from .report import _atol_rule

    if report.atol is not None:
        return f"{report.atol:g}"
    return html.escape(_atol_rule(report.tolerance)) + f" per tensor ({html.escape(report.tolerance)})"


def _rtol(report) -> str:
    from .report import _rtol_rule

    return f"{report.rtol:g}" if report.rtol is not None else html.escape(_rtol_rule(report.tolerance))


def _table(checks, local: bool) -> str:
    head = "<tr><th>#</th><th>name</th><th>max_abs</th>" + ("<th>local max_abs</th>" if local else "") + \
        "<th>max_rel</th><th>tolerance (atol)</th><th></th></tr>"
    rows = []
    for i, c in enumerate(checks):
        mark = '<span class="ok">ok</span>' if c.ok else '<span class="fail">FAIL</span>'
        loc = f"<td class='num'>{_num(c.local_max_abs)}</td>" if local else ""
        note = f" ({html.escape(c.note)})" if c.note else ""
        rows.append(f"<tr><td class='num'>{i}</td><td>{html.escape(c.name)}</td><td class='num'>{_num(c.max_abs)}</td>"
                    f"{loc}<td class='num'>{_num(c.max_rel)}</td><td class='num'>{_num(c.atol)}</td>"
                    f"<td>{mark}{note}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _num(x) -> str:
    return "" if x is None else f"{x:.3g}"


def _plot(report) -> str:
    layers = report.layers
    values = [v for c in layers for v in (c.max_abs, c.local_max_abs, c.atol) if v is not None and math.isfinite(v)]
    lo = math.floor(math.log10(max(min([v for v in values if v > 0], default=FLOOR), FLOOR)))
    hi = math.ceil(math.log10(max(max(values, default=1.0), 10 ** (lo + 1))))
    n = len(layers)

    def x(i):
        return LEFT + (W - LEFT - RIGHT) * (i + 0.5) / n

    def y(v):
        v = hi if v is None or not math.isfinite(v) else math.log10(max(v, 10.0 ** lo))
        return TOP + (H - TOP - BOTTOM) * (hi - v) / (hi - lo)

    def line(points, color, dash="", label=""):
        pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        dots = "".join(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='2.5' fill='{color}'/>" for px, py in points)
        return (f"<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='1.5' "
                f"stroke-dasharray='{dash}'><title>{label}</title></polyline>" + (dots if not dash else ""))

    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' viewBox='0 0 {W} {H}'>"]
    for e in range(lo, hi + 1):  # decades
        svg.append(f"<line x1='{LEFT}' x2='{W - RIGHT}' y1='{y(10.0 ** e):.1f}' y2='{y(10.0 ** e):.1f}' "
                   f"stroke='#eee'/><text x='{LEFT - 6}' y='{y(10.0 ** e) + 4:.1f}' text-anchor='end'>1e{e}</text>")
    first = report.first_divergence.layer if report.first_divergence else None
    for i, c in enumerate(layers):
        color = "#cf222e" if c.name == first else "#555"
        svg.append(f"<text transform='translate({x(i) + 3:.1f},{H - BOTTOM + 8}) rotate(60)' fill='{color}'>"
                   f"{html.escape(c.name[:28])}</text>")
        if c.name == first:
            svg.append(f"<line x1='{x(i):.1f}' x2='{x(i):.1f}' y1='{TOP}' y2='{H - BOTTOM}' stroke='#cf222e' "
                       f"stroke-width='1'><title>first divergence: {html.escape(c.name)}</title></line>")
    svg.append(line([(x(i), y(c.atol)) for i, c in enumerate(layers)], "#888", "5,4", "tolerance (atol)"))
    svg.append(line([(x(i), y(c.max_abs)) for i, c in enumerate(layers)], "#0969da", label="accumulated error"))
    local = [(x(i), y(c.local_max_abs)) for i, c in enumerate(layers) if c.local_max_abs is not None]
    if local:
        svg.append(line(local, "#bf8700", label="local error"))
    legend = [("#0969da", "accumulated max |error|"), ("#bf8700", "local max |error| (fed the reference's inputs)"),
              ("#888", "tolerance (atol)")]
    for k, (color, text) in enumerate(legend if local else [legend[0], legend[2]]):
        svg.append(f"<rect x='{LEFT + 10 + 260 * k}' y='{H - 18}' width='12' height='3' fill='{color}'/>"
                   f"<text x='{LEFT + 28 + 260 * k}' y='{H - 12}'>{text}</text>")
    svg.append(f"<line x1='{LEFT}' x2='{LEFT}' y1='{TOP}' y2='{H - BOTTOM}' stroke='#999'/></svg>")
    return "".join(svg)
