"""The `dynamic=` argument and the CLI's `--dynamic NAME:AXIS[=label]`: which input axes stay free.

    parse_dynamic(["input_ids:0", "input_ids:1=sequence"])
        -> {"input_ids": {0: "batch", 1: "sequence"}}

A label names the dim: the same label on two inputs is the same dim (BERT's ids and mask share
`batch` and `sequence`). Without a label, axis 0 is `batch` and axis k is `NAME_dimK`.
"""

from __future__ import annotations

from ..errors import InputError

FLAG = "--dynamic NAME:AXIS[=label]"


def default_label(name: str, axis: int) -> str:
    return "batch" if axis == 0 else f"{name}_dim{axis}"


def parse_dynamic(specs) -> dict[str, dict[int, str]]:
    """`NAME:AXIS[=label]` strings -> {name: {axis: label}}. A bad spec is an InputError."""
    out: dict[str, dict[int, str]] = {}
    for spec in specs or ():
        head, eq, label = str(spec).partition("=")
        name, colon, axis_text = head.rpartition(":")  # a name may hold ':' (TF's `x:0`)
        label = label.strip()
        axis_text = axis_text.strip()
        if not colon or not name or not axis_text.isdigit() or (eq and not label):
            raise InputError(
                f"bad --dynamic spec {spec!r}: expected {FLAG}, e.g. input_ids:1=sequence "
                "(AXIS a non-negative integer; label optional)."
            )
        _add(out, name, int(axis_text), label or None, where=f"--dynamic {spec!r}")
    return out


def normalize(dynamic) -> dict[str, dict[int, str]]:
    """The API's `dynamic=`: {name: {axis: label}} (a label may be None for the default), or
    {name: [axis, ...]}, or a list of CLI spec strings. Returns {name: {axis: label}}."""
    if dynamic is None:
        return {}
    if isinstance(dynamic, str):
        dynamic = [dynamic]
    if isinstance(dynamic, (list, tuple)):
        return parse_dynamic(dynamic)
    if not isinstance(dynamic, dict):
        raise InputError(
            f"dynamic= takes {{name: {{axis: label}}}} (e.g. {{'input_ids': {{1: 'sequence'}}}}), "
            f"not a {type(dynamic).__name__}."
        )
    out: dict[str, dict[int, str]] = {}
    for name, axes in dynamic.items():
        if isinstance(axes, int) and not isinstance(axes, bool):
            axes = [axes]
        if isinstance(axes, (list, tuple, set)):
            axes = {a: None for a in axes}
        if not isinstance(axes, dict):
            raise InputError(
                f"dynamic={{{name!r}: ...}}: expected {{axis: label}} or a list of axes, "
                f"not a {type(axes).__name__}."
            )
        for axis, label in axes.items():
            if isinstance(axis, bool) or not isinstance(axis, int):
                raise InputError(f"dynamic={{{name!r}: {{{axis!r}: ...}}}}: an axis is an integer.")
            if label is not None and (not isinstance(label, str) or not label.strip()):
                raise InputError(f"dynamic={{{name!r}: {{{axis}: {label!r}}}}}: a label is a non-empty string.")
            _add(out, str(name), axis, label.strip() if label else None, where=f"dynamic={{{name!r}: ...}}")
    return out


def _add(out: dict, name: str, axis: int, label: str | None, where: str) -> None:
    if label is None and axis >= 0:
        label = default_label(name, axis)
    axes = out.setdefault(name, {})
    if axis in axes and axes[axis] != label:
        raise InputError(f"{where}: {name} axis {axis} is declared twice, as {axes[axis]!r} and {label!r}.")
    axes[axis] = label
