"""The op coverage table, generated from the exporters' registries (never kept by hand)."""

from __future__ import annotations


def _onnx_ops() -> dict[str, int]:
    import onnx.defs

    latest: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx") and not schema.deprecated:
            latest[schema.name] = max(latest.get(schema.name, 0), schema.since_version)
    return latest


def _target_ops(target: str) -> dict[str, list[int]] | None:
    if target == "torch":
        from .exporters.torch.registry import supported

        return supported()
    if target in ("keras", "tf"):  # the TF exporter is the Keras model, frozen
        from .exporters.keras.registry import supported

        return supported()
    return None


def table(target: str | None = None, source: str | None = None):
    """Rows {"op": name, <column>: "since N" | ""} and the column names."""
    onnx_ops = _onnx_ops()
    if source is not None:
        if source != "onnx":
            from .importers import REGISTRY

            how = {"torch": "every op torch.onnx.export (dynamo) emits"}.get(source)
            if source not in REGISTRY:
                from .errors import InputError

                raise InputError(f"no importer for source {source!r}; sources: {', '.join(sorted(REGISTRY))}")
            return [{"op": "*", source: how or "see README"}], [source]
        return [{"op": op, "onnx": f"opset {v}"} for op, v in sorted(onnx_ops.items())], ["onnx"]
    targets = [target] if target else ["torch", "keras"]
    columns = list(targets)
    rows = []
    covered = {t: _target_ops(t) or {} for t in targets}
    names = sorted(set().union(*[set(c) for c in covered.values()])) if target else sorted(
        set(onnx_ops) | set().union(*[set(c) for c in covered.values()]))
    for op in names:
        row = {"op": op}
        for t in targets:
            versions = covered[t].get(op)
            row[t] = ("since " + ",".join(str(v) for v in versions)) if versions else ""
        rows.append(row)
    return rows, columns


# --- conformance: onnx's own node test cases through an exporter's backend -----------------

def _case_op(case) -> str:
    """The op a node test case is about: its only node, or the node named in the case name."""
    ops = [n.op_type for n in case.model.graph.node]
    if len(set(ops)) == 1:
        return ops[0]
    flat = case.name.replace("_", "").lower()
    named = [op for op in ops if op.lower() in flat]
    return max(named, key=len) if named else (ops[0] if ops else "?")


def _run_case(backend, case) -> tuple[str, str]:
    """("passed" | "failed" | "skipped", why) for one onnx node test case (run as onnx's
    BackendTest runs it: every data set, compared with the case's rtol/atol)."""
    import numpy as np
    from onnx.backend.test.runner import Runner, _normalize_tensor

    model = case.model
    if hasattr(backend, "is_compatible") and not backend.is_compatible(model):
        return "skipped", "not claimed"
    try:
        rep = backend.prepare(model, "CPU")
        for inputs, refs in case.data_sets:
            outs = rep.run([_normalize_tensor(t) for t in inputs])
            Runner.assert_similar_outputs([_normalize_tensor(t) for t in refs],
                                          [o if isinstance(o, list) else np.asarray(o) for o in outs],
                                          rtol=case.rtol, atol=case.atol)
    except Exception as e:  # noqa: BLE001 - every failure is a counted result
        text = str(e).strip().splitlines()
        return "failed", f"{type(e).__name__}: {text[0] if text else ''}"[:200]
    return "passed", ""


def conformance(target: str = "torch", pattern: str | None = None) -> dict[str, dict]:
    """Run onnx's node test cases through `irbridge.backend.<target>`: {case: {op, status, why}}.

    Every case is counted (claimed or not), so the totals compare with onnxruntime's own count.
    """
    import importlib
    import re
    import warnings

    from onnx.backend.test.loader import load_model_tests

    backend = importlib.import_module(target if "." in target else f"irbridge.backend.{target}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    results = {}
    for case in cases:
        if pattern and not re.search(pattern, case.name):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status, why = _run_case(backend, case)
        results[case.name] = {"op": _case_op(case), "status": status, "why": why}
    return results


def conformance_markdown(results: dict[str, dict], target: str = "torch") -> str:
    """Per-op pass counts of a conformance run, as a markdown table (with the total first)."""
    per_op: dict[str, list[int]] = {}
    for r in results.values():
        counts = per_op.setdefault(r["op"], [0, 0])
        counts[1] += 1
        counts[0] += r["status"] == "passed"
    passed = sum(c[0] for c in per_op.values())
    lines = [f"onnx {_onnx_version()} node test cases through `irbridge.backend.{target}`: "
             f"**{passed}/{len(results)}** pass.", "", f"| op | {target} (passed/cases) |", "|---|---|"]
    lines += [f"| {op} | {p}/{n} |" for op, (p, n) in sorted(per_op.items())]
    return "\n".join(lines) + "\n"


def _onnx_version() -> str:
    import onnx

    return onnx.__version__


def main(argv=None) -> int:
    """`python -m irbridge.coverage --target torch -o build/conformance-torch` writes
    DIR.json (every case's status) and DIR.md (per-op counts) from a full run."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m irbridge.coverage")
    p.add_argument("--target", default="torch")
    p.add_argument("--pattern", default=None, help="regex on case names")
    p.add_argument("-o", "--output", default=None, help="path stem for .json and .md")
    args = p.parse_args(argv)
    results = conformance(args.target, args.pattern)
    md = conformance_markdown(results, args.target)
    if args.output:
        stem = Path(args.output)
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(results, indent=1, sort_keys=True))
        stem.with_suffix(".md").write_text(md)
    print(md.splitlines()[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
