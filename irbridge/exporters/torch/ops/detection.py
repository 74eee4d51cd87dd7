"""Detection ops: NonMaxSuppression with an exact helper (runtime_detection.py)."""

from __future__ import annotations

from .. import runtime_detection as rt
from ..registry import converter


@converter("NonMaxSuppression", since=10)
def non_max_suppression(ctx):
    optional = [ctx.operand(i) if ctx.has_input(i) else None for i in (2, 3, 4)]
    return ctx.call(rt.non_max_suppression, ctx.x(0), ctx.x(1), *optional,
                    center_point_box=int(ctx.attr("center_point_box", 0)))
