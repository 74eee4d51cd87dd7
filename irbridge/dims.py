"""Which input dimensions are free and which are fixed, and why (DESIGN.md §5 `"dims"`).

A dimension the source leaves free stays symbolic in the graph (a `dim_param` such as `batch`,
or an unnamed `ir.SymbolicDim(None)`). A dimension fixed on the way in is recorded here with
the reason, in the model's metadata (`irbridge.fixed_dims`, JSON), so that the CLI's JSON,
`irbridge inspect` and Netron can all say it:

    fix(model, "x", 0, 1, "the module's forward fixes it (reshape(1, -1))")
    summary(model) -> {"free": [{"input": "input_ids", "axis": 1, "label": "sequence"}],
                       "fixed": [{"input": "x", "axis": 0, "size": 1, "why": "..."}]}
"""

from __future__ import annotations

import json

import onnx_ir as ir

FIXED = "irbridge.fixed_dims"  # model metadata: JSON list of {"input", "axis", "size", "why"}
FREE = "irbridge.free_dims"  # model metadata: JSON list of {"input", "axis", "label"}, as imported


def is_free(dim) -> bool:
    return not isinstance(dim, int)


def label(value: ir.Value, axis: int) -> str:
    """The dim's name (`batch`), or `?` followed by the axis for an unnamed free dim: unnamed
    dims at the same axis of different inputs are taken to be the same dim (BERT's ids and mask)."""
    dim = value.shape[axis]
    name = getattr(dim, "value", None)
    return str(name) if name else f"?{axis}"


def graph_inputs(model: ir.Model) -> list[ir.Value]:
    return [v for v in model.graph.inputs if v.name not in model.graph.initializers]


def fix(model: ir.Model, input_name: str, axis: int, size: int, why: str) -> None:
    """Record that `input_name`'s `axis` was fixed to `size` on import, and why."""
    entries = [e for e in fixed(model) if not (e["input"] == input_name and e["axis"] == axis)]
    entries.append({"input": input_name, "axis": int(axis), "size": int(size), "why": why})
    model.metadata_props[FIXED] = json.dumps(entries)


def fixed(model: ir.Model) -> list[dict]:
    text = model.metadata_props.get(FIXED)
    if not text:
        return []
    try:
        entries = json.loads(text)
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def free(model: ir.Model) -> list[dict]:
    out = []
    for v in graph_inputs(model):
        if v.shape is None:
            continue
        for axis, d in enumerate(v.shape):
            if is_free(d):
                out.append({"input": v.name, "axis": axis, "label": label(v, axis)})
    return out


def record_free(model: ir.Model) -> None:
    """Write the free dims into the model's metadata (for Netron and the saved .onnx)."""
    model.metadata_props[FREE] = json.dumps(free(model))


def summary(model: ir.Model) -> dict:
    """{"free": [...], "fixed": [...]} for the JSON report and `inspect`."""
    return {"free": free(model), "fixed": fixed(model)}


def fix_shapes(model: ir.Model, shapes: dict, why: str) -> None:
    """Give graph inputs the sizes in `shapes` ({name: dims}; a None keeps that dim as it is),
    recording every free dim so fixed (the user asked: `--input`, or shapes in `inputs=`)."""
    for v in graph_inputs(model):
        if v.name not in shapes:
            continue
        given = list(shapes[v.name])
        old = list(v.shape) if v.shape is not None else [None] * len(given)
        new = [o if d is None else int(d) for o, d in zip(old, given)]
        for axis, (o, d) in enumerate(zip(old, given)):
            if d is not None and (o is None or is_free(o)):
                fix(model, v.name, axis, int(d), why)
        if all(d is not None for d in new):
            v.shape = ir.Shape(new)
