"""Reading chains of nodes (the patterns gelu_chain and sdpa_chain recognise)."""

from __future__ import annotations

import onnx_ir as ir


def only_reader(v: ir.Value, *op_types: str) -> tuple[ir.Node, int] | None:
    """(node, input index) when one node of `op_types` (default domain) is all that reads `v`."""
    uses = list(v.uses())
    if len(uses) != 1 or v.is_graph_output() or uses[0][0].op_type not in op_types or uses[0][0].domain:
        return None
    return uses[0]


def scalar(v: ir.Value | None) -> float | None:
    """The value of a one-element float constant, else None."""
    if v is None or v.const_value is None:
        return None
    a = v.const_value.numpy()
    return float(a.reshape(-1)[0]) if a.size == 1 and a.dtype.kind == "f" else None


def stand_in(b, nodes: list[ir.Node], y) -> None:
    """Mark `nodes` done (their work is in the torch value `y`) and make `y` the last one's output."""
    b.done.update(nodes)
    out = nodes[-1].outputs[0].name
    b.env[out] = y
    b.values[out] = y.name
