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
