"""ScatterND and ScatterElements (and opset 9's Scatter) -> TensorOps over tf.tensor_scatter_nd_*.

BEiT builds its relative-position index with a ScatterND; detection heads and losses scatter too.
Reductions none, add, max and min convert; mul has no TF kernel and is refused by name.
"""

from __future__ import annotations

from ..registry import Unsupported, converter
from .tensor import op


def _reduction(ctx) -> str:
    reduction = ctx.attr("reduction", "none")
    if reduction not in ("none", "add", "max", "min"):
        raise Unsupported(f"reduction {reduction!r} (none, add, max and min convert)")
    return reduction


@converter("ScatterND", since=11)
def scatter_nd(ctx):
    return op(ctx, "scatter_nd", {"reduction": _reduction(ctx)})


@converter("ScatterElements", since=11)
def scatter_elements(ctx):
    return op(ctx, "scatter_elements", {"axis": ctx.attr("axis", 0), "reduction": _reduction(ctx)})


@converter("Scatter", since=9)
def scatter(ctx):
    """Opset 9's Scatter, renamed ScatterElements in opset 11."""
    return op(ctx, "scatter_elements", {"axis": ctx.attr("axis", 0), "reduction": "none"})
