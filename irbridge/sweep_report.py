"""How a sweep is shown: rich progress on stderr, a markdown table, a self-contained HTML page.

The HTML page holds its CSS and script inline and loads nothing: columns sort on a click,
the status buttons filter the rows, and the URL's fragment preselects both
(`sweep.html#status=failed&sort=seconds&desc=1`), so a link can point at the failures.
"""

from __future__ import annotations

import html
import sys
import threading
import time

from .sweep import STATUSES

MARKS = {"verified": "✓", "mismatch": "≠", "unsupported": "∅", "failed": "✗"}


class SweepProgress:
    """Models done / total, the model started last and the time elapsed, on stderr (rich on a
    terminal; plain lines when forced on for a log with IRBRIDGE_PROGRESS=1)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.current = total, enabled, 0, ""
        self._lock = threading.Lock()
        self._bar = self._task = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> SweepProgress:
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("[bold]irbridge sweep[/bold]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("models  {task.description}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task("", total=self.total)
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def started(self, name: str) -> None:
        with self._lock:
            self.current = name
            if self._bar is not None:
                self._bar.update(self._task, description=name)

    def finished(self, name: str) -> None:
        with self._lock:
            self.done += 1
            if self._bar is not None:
                self._bar.update(self._task, completed=self.done)
            elif self.enabled:
                print(f"irbridge sweep: {self.done}/{self.total} models ({name} done), "
                      f"{time.perf_counter() - self._t0:.0f} s", file=sys.stderr, flush=True)


# --- text ----------------------------------------------------------------------------------
def cell_text(c: dict) -> str:
    """One cell in a few words: '✓ 3.1e-07', '≠ conv3 (hint)', '∅ NonMaxSuppression', '✗ reason'."""
    s = c["status"]
    if s == "verified":
        return f"✓ {c['max_abs']:.1e}" if c.get("max_abs") is not None else "✓"
    if s == "mismatch":
        div = c.get("first_divergence") or {}
        return f"≠ {div.get('layer') or ''} {c['max_abs']:.1e}".strip() if c.get("max_abs") is not None else "≠"
    if s == "unsupported":
        return "∅ " + (", ".join(c.get("unsupported_ops") or []) or (c.get("error") or ""))
    return "✗ " + (c.get("error") or "")


def to_markdown(res: dict, width: int = 70) -> str:
    """Models x targets, then totals per target and the ops that block the most models."""
    targets, by = res["targets"], {(c["model"], c["target"]): c for c in res["cells"]}
    models = sorted({c["model"] for c in res["cells"]})

    def cut(text):
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= width else text[:width - 1] + "…"

    lines = ["| model | " + " | ".join(targets) + " |", "|---|" + "---|" * len(targets)]
    for m in models:
        lines.append(f"| {cut(m)} | " + " | ".join(
            f"{cut(cell_text(by[m, t]))} ({by[m, t]['seconds']:.0f} s)" if (m, t) in by else "" for t in targets) + " |")
    lines += ["", "| target | " + " | ".join(STATUSES) + " |", "|---|" + "---|" * len(STATUSES)]
    for t in targets:
        counts = res["totals"].get(t, {})
        lines.append(f"| {t} | " + " | ".join(str(counts.get(s, 0)) for s in STATUSES) + " |")
    if res.get("blocking_ops"):
        lines += ["", "| op | models it blocks |", "|---|---|"]
        for op, ms in res["blocking_ops"].items():
            lines.append(f"| {op} | {len(ms)}: {cut(', '.join(ms))} |")
    return "\n".join(lines) + "\n"


# --- HTML ----------------------------------------------------------------------------------
_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} table{border-collapse:collapse;margin:.8em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
#cells th{cursor:pointer;background:#f4f4f4;user-select:none} #cells th.sorted::after{content:" ▲"}
#cells th.sorted.desc::after{content:" ▼"} td.status{white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.verified td.status{background:#dff3df} tr.mismatch td.status{background:#fde9c8}
tr.unsupported td.status{background:#e3e3f6} tr.failed td.status{background:#f8d4d4}
.filters button{margin-right:.3em;padding:.2em .7em;border:1px solid #888;border-radius:3px;background:#fff}
.filters button.on{background:#333;color:#fff} td.detail{max-width:40em;word-break:break-word}
"""

_JS = """
(function(){
  const table=document.getElementById('cells'), body=table.tBodies[0];
  const rows=Array.from(body.rows), on=new Set(%(statuses)s);
  let key=null, desc=false;
  function apply(){
    let n=0;
    rows.forEach(r=>{const show=on.has(r.dataset.status); r.hidden=!show; if(show) n++;});
    document.getElementById('shown').textContent=n+' of '+rows.length+' cells shown';
    document.querySelectorAll('.filters button').forEach(b=>b.classList.toggle('on', on.has(b.dataset.status)));
  }
  function sort(k, d){
    key=k; desc=d;
    const th=table.querySelector('th[data-key="'+k+'"]'), numeric=th && th.dataset.type==='num';
    const val=r=>{const v=r.querySelector('td[data-key="'+k+'"]').dataset.value;
                  return numeric ? (v===''?Infinity:parseFloat(v)) : v;};
    rows.sort((a,b)=>{const x=val(a), y=val(b); const c=x<y?-1:x>y?1:0; return d?-c:c;});
    rows.forEach(r=>body.appendChild(r));
    table.querySelectorAll('th').forEach(h=>{h.classList.toggle('sorted', h===th); h.classList.toggle('desc', h===th&&d);});
  }
  table.querySelectorAll('th').forEach(th=>th.addEventListener('click',()=>sort(th.dataset.key, key===th.dataset.key?!desc:false)));
  document.querySelectorAll('.filters button').forEach(b=>b.addEventListener('click',()=>{
    const s=b.dataset.status; if(on.has(s)) on.delete(s); else on.add(s); apply();}));
  const hash=new URLSearchParams(location.hash.slice(1));
  if(hash.get('status')){on.clear(); hash.get('status').split(',').forEach(s=>on.add(s));}
  if(hash.get('sort')) sort(hash.get('sort'), hash.get('desc')==='1');
  apply();
  document.body.dataset.ready='1';
})();
"""


def to_html(res: dict, title: str = "irbridge sweep") -> str:
    """The sweep as one HTML page with inline CSS and script (nothing loaded from anywhere)."""
    e = html.escape
    targets = res["targets"]
    head = "".join(f"<th>{e(s)}</th>" for s in STATUSES)
    totals = "".join(
        f"<tr><th>{e(t)}</th>" + "".join(
            f'<td class="num total" data-target="{e(t)}" data-status="{s}">{res["totals"].get(t, {}).get(s, 0)}</td>'
            for s in STATUSES) + "</tr>" for t in targets)
    blocking = "".join(f"<tr><td>{e(op)}</td><td class='num'>{len(ms)}</td><td>{e(', '.join(ms))}</td></tr>"
                       for op, ms in res.get("blocking_ops", {}).items())
    cols = [("model", "model", "str"), ("target", "target", "str"), ("status", "status", "str"),
            ("max_abs", "max |error|", "num"), ("detail", "detail", "str"), ("seconds", "seconds", "num")]
    rows = []
    for c in res["cells"]:
        max_abs = c.get("max_abs")
        vals = {"model": (c["model"], e(c["model"])), "target": (c["target"], e(c["target"])),
                "status": (c["status"], f"{MARKS.get(c['status'], '')} {e(c['status'])}"),
                "max_abs": ("" if max_abs is None else repr(float(max_abs)),
                            "" if max_abs is None else f"{max_abs:.2e}"),
                "detail": (_detail(c), e(_detail(c))),
                "seconds": (repr(float(c["seconds"] or 0)), f"{c['seconds'] or 0:.1f}")}
        tds = "".join(f'<td data-key="{k}" data-value="{e(vals[k][0])}" class="{k}{" num" if t == "num" else ""}">'
                      f"{vals[k][1]}</td>" for k, _, t in cols)
        rows.append(f'<tr class="cell {e(c["status"])}" data-status="{e(c["status"])}" '
                    f'data-target="{e(c["target"])}">{tds}</tr>')
    ths = "".join(f'<th data-key="{k}" data-type="{t}">{e(label)}</th>' for k, label, t in cols)
    buttons = "".join(f'<button data-status="{s}" class="on">{MARKS[s]} {s}</button>' for s in STATUSES)
    script = _JS % {"statuses": list(STATUSES)}
    n_models = len({c["model"] for c in res["cells"]})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<style>{_CSS}</style></head>
<body>
<h1>{e(title)}: {n_models} models &times; {len(targets)} targets</h1>
<table id="totals"><tr><th>target</th>{head}</tr>{totals}</table>
{"<h2>Ops that block models</h2><table id='blocking'><tr><th>op</th><th>models</th><th>which</th></tr>" + blocking + "</table>" if blocking else ""}
<div class="filters">{buttons} <span id="shown"></span></div>
<table id="cells"><thead><tr>{ths}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
<script>{script}</script>
</body></html>
"""


def _detail(c: dict) -> str:
    if c["status"] == "verified":
        return ""
    if c["status"] == "mismatch":
        div = c.get("first_divergence") or {}
        if div:
            return f"first divergence: {div.get('layer')}" + (f" ({div['hint']})" if div.get("hint") else "")
        return c.get("error") or ""
    if c["status"] == "unsupported":
        ops = ", ".join(c.get("unsupported_ops") or [])
        return (ops + ": " if ops else "") + (c.get("error") or "")
    return c.get("error") or ""
