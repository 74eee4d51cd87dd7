"""Gather -> Embedding (integer ids into a constant table, trainable) or a TensorOp take."""

from __future__ import annotations

import keras

from ..builder import Held
from ..registry import converter
from .tensor import ident, op


@converter("Gather")
def gather(ctx):
    """`Embedding` for rows of a constant 2-D table picked by run-time integer ids (token,
    position and type embeddings); keras.ops.take otherwise (shape vectors, x[:, 0], ...)."""
    table = ctx.const(0)
    axis = ctx.attr("axis", 0)
    if table is not None and table.ndim == 2 and axis == 0 and ctx.const(1) is None and \
            table.dtype.kind == "f" and (ctx.dtype_name(ctx.node.inputs[1]) or "").startswith(("int", "uint")):
        y = ctx.layer(keras.layers.Embedding, ctx.x(1, ident(ctx.rank(1))), weights=[table],
                      input_dim=table.shape[0], output_dim=table.shape[1])
        return Held(y, ident(ctx.rank(1) + 1))
    return op(ctx, "gather", {"axis": axis})
