"""The accuracy report of a quantized export (float16, int8): how much was lost, and where.

A quantized model is not held to a tolerance; it is measured against the reference
(onnxruntime on the canonical graph) over the check's inputs and the calibration samples:

- per output: max_abs, rel_error (||q - r|| / ||r||), cosine similarity and, for class scores
  (rank 2, or rank >= 3 with classes on axis 1), top-1 agreement (argmax on axis 1);
- per layer (its output matched to the source layer by provenance): rel_error, channel_error
  (the mean over channels of each channel's relative error: a channel with a huge range
  hides the others' loss in rel_error, not here), cosine, and `added`: its channel_error
  minus the largest of the nearest upstream layers' (the error this layer adds). `worst`
  names the layer that adds the most.

verify imports no exporter: both sides are Runners (`values` gives {ONNX value: array}).
"""

from __future__ import annotations

import numpy as np

from .runners import runner_for

LAYER_SAMPLES = 4  # samples run with every tensor kept (memory: all intermediates at once)


def accuracy_report(reference, candidate, samples: list[dict], *, quantize: str | None = None,
                    layers: bool = True) -> dict:
    """{"quantize", "samples", "outputs": [...], "layers": [...], "worst": layer | None}."""
    ra, rb = runner_for(reference), runner_for(candidate, None)
    outs: dict[str, _Acc] = {}
    for feeds in samples:
        want, got = ra.run(feeds), rb.run(feeds)
        for name, r in want.items():
            if name in got:
                outs.setdefault(name, _Acc(top1=_top1_axis(np.asarray(r)))).add(r, got[name])
    report = {"quantize": quantize, "samples": len(samples),
              "outputs": [acc.to_dict(name) for name, acc in outs.items()], "layers": [], "worst": None}
    if layers and ra.values is not None and rb.values is not None and rb.layer_map:
        report["layers"] = _layers(ra, rb, samples[:LAYER_SAMPLES])
        ranked = [row for row in report["layers"] if row["added"] is not None]
        if ranked:
            report["worst"] = max(ranked, key=lambda row: row["added"])["layer"]
    if ra.close is not None:
        ra.close()
    return report


def within(report: dict, max_error: float) -> bool:
    """--max-error: every output's max_abs error at most `max_error`."""
    return all(o["max_abs"] <= max_error for o in report["outputs"])


def summary(report: dict) -> str:
    """A few readable lines for the terminal."""
    lines = [f"accuracy ({report['quantize']}, {report['samples']} samples, against onnxruntime):"]
    for o in report["outputs"]:
        top = f" top1={o['top1']:.3f}" if o.get("top1") is not None else ""
        lines.append(f"  output {o['name']}: max_abs={o['max_abs']:.3g} rel={o['rel_error']:.3g} "
                     f"cos={o['cosine']:.5f}{top}")
    worst = sorted((r for r in report["layers"] if r["added"] is not None), key=lambda r: -r["added"])[:5]
    if worst:
        lines.append("  layers adding the most error (channel-relative):")
        lines.extend(f"    {r['layer']} ({r['op'] or '?'}): adds {r['added']:.3g}, now {r['channel_error']:.3g}"
                     for r in worst)
    return "\n".join(lines)


class _Acc:
    """Accumulates one tensor's comparison over samples."""

    def __init__(self, top1=None):
        self.max_abs, self.d2, self.r2, self.g2, self.dot = 0.0, 0.0, 0.0, 0.0, 0.0
        self.top1_axis, self.agree, self.total = top1, 0, 0
        self.channel: list[float] = []

    def add(self, ref, got) -> None:
        r = np.asarray(ref, np.float64)
        g = np.asarray(got, np.float64)
        if r.shape != g.shape:
            raise ValueError(f"shape {g.shape} != reference {r.shape}")
        d = g - r
        self.max_abs = max(self.max_abs, float(np.max(np.abs(d))) if d.size else 0.0)
        self.d2 += float(np.sum(d * d))
        self.r2 += float(np.sum(r * r))
        self.g2 += float(np.sum(g * g))
        self.dot += float(np.sum(r * g))
        if r.ndim >= 2 and r.shape[1] > 1:
            axes = tuple(a for a in range(r.ndim) if a != 1)
            num = np.sqrt(np.sum(d * d, axis=axes))
            den = np.sqrt(np.sum(r * r, axis=axes))
            live = den > 1e-12 * max(1.0, float(den.max()))
            if live.any():
                self.channel.append(float(np.mean(num[live] / den[live])))
        if self.top1_axis is not None:
            a, b = np.argmax(r, axis=self.top1_axis), np.argmax(g, axis=self.top1_axis)
            self.agree += int(np.sum(a == b))
            self.total += int(a.size)

    def to_dict(self, name: str) -> dict:
        rel = float(np.sqrt(self.d2 / self.r2)) if self.r2 > 0 else float(np.sqrt(self.d2))
        cos = self.dot / np.sqrt(self.r2 * self.g2) if self.r2 > 0 and self.g2 > 0 else float(self.d2 == 0)
        d = {"name": name, "max_abs": self.max_abs, "rel_error": rel, "cosine": float(cos)}
        d["channel_error"] = float(np.mean(self.channel)) if self.channel else rel
        d["top1"] = self.agree / self.total if self.total else None
        return d


def _top1_axis(r: np.ndarray):
    if r.dtype.kind != "f" or r.ndim < 2 or r.shape[1] < 2:
        return None
    return 1


def _layers(ra, rb, samples: list[dict]) -> list[dict]:
    accs: dict[str, _Acc] = {}
    for feeds in samples:
        want, got = ra.values(feeds), rb.values(feeds)
        for layer, value in rb.layer_map.items():
            if value in want and value in got and np.shape(want[value]) == np.shape(got[value]):
                if np.asarray(want[value]).dtype.kind == "f":
                    accs.setdefault(layer, _Acc()).add(want[value], got[value])
    rows = {layer: acc.to_dict(layer) for layer, acc in accs.items()}
    model = ra.model
    ops = _ops(model)
    upstream = _upstream(model, {rb.layer_map[layer]: layer for layer in rows}) if model is not None else {}
    if model is not None:  # in graph order (the file's notes keep the layers sorted by name)
        order = {o.name: i for i, node in enumerate(model.graph) for o in node.outputs}
        rows = dict(sorted(rows.items(), key=lambda kv: order.get(rb.layer_map[kv[0]], len(order))))
    out = []
    for layer, row in rows.items():
        ups = [rows[u]["channel_error"] for u in upstream.get(layer, ()) if u in rows]
        added = row["channel_error"] - max(ups, default=0.0)
        out.append({"layer": layer, "op": ops.get(layer), "value": rb.layer_map[layer],
                    "max_abs": row["max_abs"], "rel_error": row["rel_error"],
                    "channel_error": row["channel_error"], "cosine": row["cosine"], "added": added})
    return out


def _ops(model) -> dict:
    if model is None:
        return {}
    from ..provenance import source_of

    out = {}
    for node in model.graph:
        out[source_of(node)] = node.metadata_props.get("irbridge.source_op") or node.op_type
    return out


def _upstream(model, reported: dict) -> dict:
    """{layer: the nearest reported layers upstream of its output value} through the graph."""
    producer = {o.name: node for node in model.graph for o in node.outputs if o.name}
    out = {}
    for value, layer in reported.items():
        found, seen = set(), set()
        node = producer.get(value)
        stack = [i.name for i in node.inputs if i is not None] if node is not None else []
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in reported:
                found.add(reported[v])
                continue
            p = producer.get(v)
            if p is not None:
                stack.extend(i.name for i in p.inputs if i is not None)
        out[layer] = sorted(found)
    return out
