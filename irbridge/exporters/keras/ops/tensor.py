"""Shape and data-movement ops -> Keras layers (Reshape, Concatenate, Permute-free views) or,
where no standard layer fits, a `TensorOp` of keras.ops with every free dim kept live.

Shape arithmetic (Shape -> Gather -> Concat -> Reshape) is either read statically, when the
Reshape then is a `keras.layers.Reshape` (see `plan_reshapes`), or computed at run time.
"""

from __future__ import annotations

import keras
import numpy as np
import onnx_ir as ir

from ....passes._shape_read import target_entries
from ..builder import Held, fuser, keeps_batch, same_dim
from ..registry import Unsupported, converter


def ident(rank: int | None) -> tuple[int, ...]:
    return tuple(range(rank or 0))


def held_perm(ctx, i: int = 0) -> tuple[int, ...]:
    """The layout input i is held in now (its batch first), else ONNX order: where an op that
    keeps its input's shape computes without a Permute."""
    v = ctx.node.inputs[i]
    perm = ctx.b.env[v.name][1] if v.name in ctx.b.env else ()
    return tuple(perm) if perm and perm[0] == 0 else ident(ctx.rank(i))


def op(ctx, name, attrs=None, inputs=None, perm=None):
    """A TensorOp of the node, its output held in ONNX order (or `perm`)."""
    t = ctx.tensor_op(name, attrs, perm=perm, inputs=inputs)
    if isinstance(t, (list, tuple)):
        return tuple(Held(x, ident(len(o.shape) if o.shape is not None else len(x.shape)))
                     for x, o in zip(t, ctx.node.outputs))
    return Held(t, perm if perm is not None else ident(len(t.shape)))


def with_sizes(ctx, x, sizes: dict[int, int]):
    """`x` with the sizes of some axes (held order) stated where Keras lost them, e.g. after a
    Reshape to run-time sizes: layers with weights need them to build (a Conv's channels, a
    LayerNormalization's axes). The ONNX graph or the weight knows them; the identity TensorOp
    checks them at run time (tf.ensure_shape)."""
    if all(x.shape[a] is not None for a in sizes):
        return x
    from ....keras_tensor_layers import TensorOp

    known = [sizes.get(a, d) for a, d in enumerate(x.shape)]
    return ctx.layer(TensorOp, x, op="identity", known=known, name_suffix="_sizes")


# --- static reading of shape arithmetic ------------------------------------------------------------
def shape_entries(v: ir.Value):
    """The entries of a 1-D int64 shape value as far as they are known before run time: an int,
    ('dim', value, axis) for a size read from a tensor, or None; None if nothing is known
    (the passes' reading, with integer arithmetic)."""
    return target_entries(v, arithmetic=True)


_BATCH_KEEPERS = {"Add", "Sub", "Mul", "Div", "Pow", "MatMul", "LayerNormalization", "Softmax", "Erf",
                  "Tanh", "Sigmoid", "Relu", "Gelu", "Sqrt", "Cast", "Identity", "Dropout", "Where",
                  "Gemm", "Neg", "Reciprocal", "SimplifiedLayerNormalization", "RMSNormalization"}


def batch_root(v: ir.Value, reshapes: dict, depth: int = 0):
    """A value known to have the same dim 0 as `v` and from which it descends through
    batch-keeping ops only (elementwise, MatMul, norms, batch-first Transposes, planned Reshapes)."""
    while depth < 400:
        n = v.producer()
        depth += 1
        if n is None or n.domain:
            return v
        if n.op_type == "Transpose" and (list(n.attributes.get_ints("perm", [])) or [1])[0] == 0:
            v = n.inputs[0]
        elif n.op_type == "Reshape" and n in reshapes:
            v = n.inputs[0]
        elif n.op_type == "Gather" and n.inputs[0].const_value is not None:
            v = n.inputs[1]
        elif n.op_type in _BATCH_KEEPERS:
            rank = len(v.shape) if v.shape is not None else None
            live = [x for x in n.inputs if x is not None and x.const_value is None and x.shape is not None
                    and len(x.shape) == rank and (x.shape[0] != 1 or v.shape[0] == 1)]
            if not live:
                return v
            v = live[0]
        else:
            return v
    return v


@fuser
def plan_reshapes(b, graph) -> None:
    """Reshapes whose target is known beyond the batch but for one size become Keras Reshape
    layers (`-1` for that size): the batch provably kept, the shape arithmetic then not needed."""
    for n in graph:
        if n.op_type != "Reshape" or n.domain or n.inputs[0].shape is None:
            continue
        x, entries = n.inputs[0], shape_entries(n.inputs[1])
        if entries is None or len(entries) < 2 or (n.attributes.get_int("allowzero", 0) and 0 in entries):
            continue
        entries = [("dim", x, i) if e == 0 else e for i, e in enumerate(entries)]
        entries = [e[1].shape[e[2]] if isinstance(e, tuple) and isinstance(e[1].shape[e[2]], int) else e
                   for e in entries]
        first = entries[0]
        if not (isinstance(first, tuple) and first[2] == 0 and
                (same_dim(first[1].shape[0], x.shape[0]) or
                 batch_root(first[1], b.reshapes) is batch_root(x, b.reshapes))):
            continue
        rest = [e if isinstance(e, int) else -1 for e in entries[1:]]
        if rest.count(-1) > 1 or any(e == 0 for e in rest):
            continue
        b.reshapes[n] = tuple(rest)


@converter("Reshape", since=5)
def reshape(ctx):
    planned = ctx.b.reshapes.get(ctx.node)
    src, out = ctx.shape(0), ctx.out_shape(0)
    if planned is None and src is not None and out is not None and keeps_batch(ctx.node) and None not in out[1:]:
        planned = tuple(out[1:])
    if planned is not None:
        return Held(ctx.layer(keras.layers.Reshape, ctx.x(0, ident(ctx.rank(0)), order_only=True),
                              target_shape=planned), ident(len(planned) + 1))
    return op(ctx, "reshape", {"allowzero": ctx.attr("allowzero", 0)})


@converter("Flatten")
def flatten(ctx):
    if ctx.attr("axis", 1) == 1 and ctx.rank(0) is not None:
        if ctx.rank(0) == 2:
            return Held(ctx.x(0, (0, 1)), (0, 1))
        return Held(ctx.layer(keras.layers.Flatten, ctx.x(0, ident(ctx.rank(0)), order_only=True)), (0, 1))
    axis = ctx.attr("axis", 1)
    return op(ctx, "flatten", {"axis": axis + ctx.rank(0) if axis < 0 else axis})


@converter("Transpose")
def transpose(ctx):
    """A change of view, free: the output is the input's data read through `perm`."""
    rank = ctx.rank(0)
    p = ctx.attr("perm") or list(reversed(range(rank)))
    name = ctx.node.inputs[0].name
    if name not in ctx.b.env:
        raise Unsupported(f"input {name!r} is a constant or comes from an unconverted node")
    t, have = ctx.b.env[name]
    q = tuple(p.index(h) for h in have)
    if q and q[0] == 0:
        return Held(t, q)
    return op(ctx, "transpose", {"perm": list(p)})


@converter("Shape", since=1)
def shape(ctx):
    """Read from the data as it is held (a transposed view's sizes permuted back): no Permute."""
    attrs = {}
    if ctx.attr("start") is not None:
        attrs["start"] = ctx.attr("start")
    if ctx.attr("end") is not None:
        attrs["end"] = ctx.attr("end")
    name = ctx.node.inputs[0].name
    if name in ctx.b.env and ctx.b.env[name][1] != ident(len(ctx.b.env[name][1])):
        from .... import provenance
        from ....keras_tensor_layers import TensorOp

        t, have = ctx.b.env[name]
        layer = TensorOp(op="shape", attrs={**attrs, "perm": [list(have).index(i) for i in range(len(have))]},
                         name=ctx.b.fresh(provenance.source_of(ctx.node)), trainable=ctx.b.trainable)
        return Held(layer([t]), (0,))
    return op(ctx, "shape", attrs)


@converter("Size")
def size(ctx):
    return op(ctx, "size")


@converter("Concat")
def concat(ctx):
    perm, n = ctx.perm_out(0), len(ctx.node.inputs)
    live = [ctx.const(i) is None for i in range(n)]
    floats = all(ctx.b.env.get(v.name, (None,))[0] is not None and "float" in str(ctx.b.env[v.name][0].dtype)
                 for v in ctx.node.inputs if v.name in ctx.b.env)
    if all(live) and floats and len({ctx.rank(i) for i in range(n)}) == 1 and perm:
        xs = [ctx.x(i, perm) for i in range(n)]
        if n == 1:
            return Held(xs[0], perm)
        return Held(ctx.layer(keras.layers.Concatenate, *xs, axis=ctx.axis(ctx.attr("axis"), perm)), perm)
    return op(ctx, "concat", {"axis": ctx.attr("axis")})


@converter("Unsqueeze", since=13)
def unsqueeze(ctx):
    return op(ctx, "unsqueeze")


@converter("Squeeze", since=13)
def squeeze(ctx):
    return op(ctx, "squeeze")


@converter("Slice", since=10)
def slice_(ctx):
    """Cut in the layout the input is held (assign-nhwc holds the output so when `axes` is
    constant): a channels-last Conv1D output loses its last step without a Permute. The cut
    axes and steps must be known before run time (starts and ends may come at run time)."""
    runtime = [name for i, name in ((3, "axes"), (4, "steps")) if ctx.has_input(i) and ctx.const(i) is None]
    attrs = {}
    if not ctx.has_input(3) and ctx.const(1) is None:  # the run-time starts' length: Keras may not know it
        count = ctx.shape(1)[0] if ctx.shape(1) else None
        if count is None:
            runtime.append("the number of starts")
        attrs["count"] = count
    if runtime:
        raise Unsupported(f"Slice with {' and '.join(runtime)} given at run time: a Keras slice needs the axes it "
                          "cuts and its steps fixed; make them constants in the source graph")
    perm = ctx.perm_out(0)
    if perm == ident(len(perm)):
        return op(ctx, "slice", attrs or None)
    return op(ctx, "slice", {**attrs, "perm": list(perm)}, perm=perm)


@converter("Expand", since=8)
def expand(ctx):
    return op(ctx, "expand")


@converter("Tile", since=6)
def tile(ctx):
    return op(ctx, "tile")


@converter("GatherElements")
def gather_elements(ctx):
    return op(ctx, "gather_elements", {"axis": ctx.attr("axis", 0)})


@converter("GatherND", since=12)
def gather_nd(ctx):
    return op(ctx, "gather_nd", {"batch_dims": ctx.attr("batch_dims", 0)})


@converter("Split", since=18)
def split(ctx):
    attrs = {"axis": ctx.attr("axis", 0)}
    if not ctx.has_input(1):
        attrs["num_outputs"] = ctx.attr("num_outputs") or len(ctx.node.outputs)
    return op(ctx, "split", attrs)


@converter("Range", since=11)
def range_(ctx):
    return op(ctx, "range", {"dtype": ctx.dtype_name(ctx.node.outputs[0])})


@converter("ConstantOfShape", since=9)
def constant_of_shape(ctx):
    value = ctx.node.attributes.get("value")
    v = np.zeros(1, np.float32) if value is None else value.value.numpy().reshape(-1)
    return op(ctx, "constant_of_shape", {"value": v[0].item(), "dtype": v.dtype.name})


@converter("Trilu", since=14)
def trilu(ctx):
    return op(ctx, "trilu", {"upper": ctx.attr("upper", 1)})


@converter("Identity")
def identity(ctx):
    name = ctx.node.inputs[0].name
    if name not in ctx.b.env:
        raise Unsupported(f"input {name!r} is a constant or comes from an unconverted node")
    return Held(*ctx.b.env[name])


@converter("Dropout")
def dropout(ctx):
    if ctx.has_input(2) or (len(ctx.node.outputs) > 1 and (ctx.node.outputs[1].uses() or ctx.node.outputs[1].is_graph_output())):
        raise Unsupported("Dropout's training mode or mask output (export is for inference)")
    ratio = ctx.const(1) if ctx.has_input(1) else None
    return ctx.layer(keras.layers.Dropout, ctx.x(0), rate=float(ratio) if ratio is not None else 0.5)


@converter("Pad", since=18)
def pad(ctx):
    from ....passes.assign_nhwc import channels_last

    pads, value = ctx.const(1), ctx.const(2) if ctx.has_input(2) else None
    mode = ctx.attr("mode", "constant")
    if pads is not None and mode == "constant" and (value is None or float(value) == 0) \
            and not ctx.has_input(3) and ctx.rank(0) == 4:
        begin, end = [int(p) for p in pads[:4]], [int(p) for p in pads[4:]]
        # ZeroPadding2D pads axes 1 and 2 of the data as held: NCHW data held NHWC, or data that
        # is NHWC in the graph itself (a Keras source's Pad before a strided depthwise conv)
        for perm in dict.fromkeys((channels_last(4), ctx.perm_in(0))):
            if all(not (begin[perm[j]] or end[perm[j]]) for j in (0, 3)):
                t = ctx.layer(keras.layers.ZeroPadding2D, ctx.x(0, perm),
                              padding=((begin[perm[1]], end[perm[1]]), (begin[perm[2]], end[perm[2]])))
                return Held(t, perm)
    return op(ctx, "pad", {"mode": mode}, inputs=[0, 1, 2 if ctx.has_input(2) else None,
                                                  3 if ctx.has_input(3) else None])


# --- block rearrangement, in the layout the input is held (channels-last or ONNX order) ------------
def _blocks(ctx, name, **attrs):
    if ctx.rank(0) != 4:
        raise Unsupported(f"{ctx.node.op_type} of a tensor that is not 4-D")
    perm = held_perm(ctx)
    perm = perm if perm in ((0, 2, 3, 1), (0, 1, 2, 3)) else (0, 1, 2, 3)
    attrs = {"blocksize": ctx.attr("blocksize"), "channels_last": perm != (0, 1, 2, 3), **attrs}
    return Held(ctx.tensor_op(name, attrs, perm=perm), perm)


@converter("DepthToSpace", since=11)
def depth_to_space(ctx):
    return _blocks(ctx, "depth_to_space", mode=ctx.attr("mode", "DCR"))


@converter("SpaceToDepth", since=13)
def space_to_depth(ctx):
    return _blocks(ctx, "space_to_depth", mode=ctx.attr("mode", "DCR"))
