"""Attention blocks -> one keras.layers.MultiHeadAttention, where the graph is exactly that.

The pattern (PyTorch's and Hugging Face's TorchScript exports write it this way):

    x -> MatMul(Wq)+bq -> Reshape(B,T,H,D) -> Transpose(0,2,1,3) -----------\\
    x -> MatMul(Wk)+bk -> Reshape(B,S,H,D) -> Transpose(0,2,3,1) -> MatMul -> *scale [-> + mask]
      -> Softmax(-1) [-> Where(IsNaN, 0, .)] -> MatMul( <- Transpose <- Reshape <- MatMul(Wv)+bv <- x)
      -> Transpose(0,2,1,3) -> Reshape(B,T,H*D) -> MatMul(Wo)+bo

becomes MultiHeadAttention(num_heads=H, key_dim=D)(x, x, attention_mask=m) with the four
projections as its weights (Wq reshaped to (E, H, D), Wo to (H, D, E), ...). Every Reshape's
target is evaluated symbolically (Shape/Gather/Concat/Slice arithmetic) and the axes are tracked
by name, so a head split in another order is not taken. The scale (on the scores, or split on Q
and K) must be 1/sqrt(D); the additive mask must be `(1 - m) * c` or `Where(m, 0, c)` with c a
large negative number (exact: both give exp() == 0 at masked positions; a row with every
position masked, which the checks never feed, differs). Anything else stays Dense layers plus
einsum, and the reason is logged at debug level.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .... import provenance
from ..builder import Held, _shape_only, fuser
from .attention_axes import Axes, NoMatch, const, scalar

log = logging.getLogger(__name__)
_MASKED = -1e4  # an additive mask at most this is "masked" (exp underflows to 0 in fp16 and fp32)


# --- the pattern ----------------------------------------------------------------------------------
class _Block:
    def __init__(self):
        self.nodes: set = set()
        self.shape_readers: set = set()
        self.mask_nodes: list = []
        self.axes = Axes()
        self.scale = 1.0
        self.mask = None


def _only_reader(blk, v, reader):
    """`reader` is the one node computing with `v` (Shape nodes aside: checked later)."""
    if v.is_graph_output():
        raise NoMatch(f"{v.name} is an output of the graph")
    for n, _ in v.uses():
        if n is reader:
            continue
        if n.op_type == "Shape" and not n.domain:
            blk.shape_readers.add(n)
            continue
        raise NoMatch(f"{v.name} is read outside the block too ({n.name})")


def _projection(blk, v, taken):
    """(x, W, b or None, nodes) when `v` is x @ W (+ b) with constant W [in, out], b [out]."""
    p = v.producer()
    bias = None
    if p is not None and p.op_type == "Add" and not p.domain:
        for i in (0, 1):
            c, other = const(p.inputs[i]), p.inputs[1 - i]
            m = other.producer()
            if c is not None and m is not None and m.op_type == "MatMul":
                bias, add, p = c, p, m
                _only_reader(blk, other, add)
                blk.nodes.add(add)
                break
    if p is None or p.op_type != "MatMul" or p.domain or p in taken:
        raise NoMatch(f"{v.name} is not a projection (MatMul with constant weights)")
    w, x = const(p.inputs[1]), p.inputs[0]
    if w is None or w.ndim != 2 or x.shape is None or len(x.shape) != 3 or const(x) is not None:
        raise NoMatch(f"{p.name} is not x @ W with a constant 2-D W and a 3-D x")
    if bias is not None and (bias.size != w.shape[1] or bias.shape[-1:] != (w.shape[1],)):
        raise NoMatch(f"the bias after {p.name} is not a vector over its output")
    blk.nodes.add(p)
    return x, w, None if bias is None else bias.reshape(-1), p


def _chain_to(blk, v, taken):
    """Walk back from `v` over Reshape/Transpose/scalar Mul/Div to a projection: (projection,
    chain nodes in order, scale)."""
    chain, scale = [], 1.0
    while True:
        p = v.producer()
        if p is None or p.domain or p in taken:
            raise NoMatch(f"{v.name} does not come from a projection")
        if p.op_type in ("Reshape", "Transpose"):
            nxt = p.inputs[0]
        elif p.op_type in ("Mul", "Div") and scalar(p.inputs[1]) is not None:
            c = scalar(p.inputs[1])
            scale *= c if p.op_type == "Mul" else 1.0 / c
            nxt = p.inputs[0]
        elif p.op_type == "Mul" and scalar(p.inputs[0]) is not None:
            scale *= scalar(p.inputs[0])
            nxt = p.inputs[1]
        else:
            x, w, b, mm = _projection(blk, v, taken)
            return (x, w, b, mm, v), chain[::-1], scale
        _only_reader(blk, nxt, p)
        chain.append(p)
        blk.nodes.add(p)
        v = nxt


def _side(blk, v, reader, taken, x_names, head_dim, want, label):
    """Check the path from a projection (output axis `label`) to `v`, which only `reader` reads:
    (x, W, b, MatMul, scale)."""
    _only_reader(blk, v, reader)
    (x, w, b, mm, out), chain, scale = _chain_to(blk, v, taken)
    if x not in blk.axes.of:
        blk.axes.start(x, x_names)
    if x.shape[-1] != w.shape[0]:
        raise NoMatch(f"{mm.name} multiplies a width-{x.shape[-1]} tensor by a {w.shape[0]}-row W")
    names = blk.axes.of[x][:2] + (label,)
    blk.axes.size[label] = w.shape[1]
    blk.axes.of[out] = names
    for node in chain:
        names = blk.axes.step(node, names, head_dim)
        blk.axes.of[node.outputs[0]] = names
    if names != want:
        raise NoMatch(f"{v.name} holds axes {names}, not {want}")
    return x, w, b, mm, scale


def _mask_of(blk, a):
    """The boolean-like value (True/1: attend) an additive mask `a` is made from, or None."""
    p = a.producer()
    if p is None or p.domain or a.shape is None or len(a.shape) != 4:
        return None
    if p.op_type == "Where":
        zero, neg = scalar(p.inputs[1]), scalar(p.inputs[2])
        if zero == 0.0 and neg is not None and neg <= _MASKED and p.inputs[0].shape is not None \
                and len(p.inputs[0].shape) == 4:
            blk.mask_nodes.append(p)
            return p.inputs[0]
        return None
    if p.op_type == "Mul":
        for i in (0, 1):
            c, sub = scalar(p.inputs[1 - i]), p.inputs[i].producer()
            if c is None or c > _MASKED or sub is None or sub.op_type != "Sub" or scalar(sub.inputs[0]) != 1.0:
                continue
            cast = sub.inputs[1].producer()
            if cast is None or cast.op_type != "Cast":
                return None
            m = cast.inputs[0]
            kind = m.dtype.numpy().kind if m.dtype is not None else "f"
            if kind not in "biu" or m.shape is None or len(m.shape) != 4:
                return None  # a float mask may hold values other than 0/1
            blk.mask_nodes += [p, sub, cast]
            return m
    return None


def match(softmax, taken) -> _Block:
    """The attention block whose Softmax is `softmax` (raises NoMatch saying why not)."""
    blk = _Block()
    blk.nodes.add(softmax)
    sv = softmax.inputs[0]
    if sv.shape is None or len(sv.shape) != 4 or softmax.attributes.get_int("axis", -1) not in (-1, 3):
        raise NoMatch("a Softmax other than over the last axis of 4-D scores")
    _only_reader(blk, sv, softmax)
    # scores: MatMul(q, k) [-> scalar Mul/Div]* [-> + mask]
    v, p = sv, sv.producer()
    if p is not None and p.op_type == "Add" and not p.domain:
        for i in (0, 1):
            m = _mask_of(blk, p.inputs[1 - i])
            if m is not None:
                blk.mask = m
                _only_reader(blk, p.inputs[i], p)
                blk.nodes.add(p)
                v = p.inputs[i]
                break
        else:
            raise NoMatch("an Add on the scores that is not a mask made from 0/1 values")
    while True:
        p = v.producer()
        if p is None or p.domain or p in taken:
            raise NoMatch("the scores are not a MatMul of projections")
        if p.op_type == "MatMul":
            break
        if p.op_type in ("Mul", "Div") and scalar(p.inputs[1]) is not None:
            blk.scale *= scalar(p.inputs[1]) if p.op_type == "Mul" else 1.0 / scalar(p.inputs[1])
            nxt = p.inputs[0]
        elif p.op_type == "Mul" and scalar(p.inputs[0]) is not None:
            blk.scale *= scalar(p.inputs[0])
            nxt = p.inputs[1]
        else:
            raise NoMatch(f"{p.op_type} {p.name} on the scores")
        _only_reader(blk, nxt, p)
        blk.nodes.add(p)
        v = nxt
    qk = p
    blk.nodes.add(qk)
    # softmax [-> Where(IsNaN(p), 0, p)] -> MatMul(p, v)
    probs = softmax.outputs[0]
    readers = {n.op_type: n for n, _ in probs.uses()}
    if set(readers) == {"IsNaN", "Where"} and len(probs.uses()) == 2:
        isnan, where = readers["IsNaN"], readers["Where"]
        if where.inputs[0] is not isnan.outputs[0] or scalar(where.inputs[1]) != 0.0 or where.inputs[2] is not probs:
            raise NoMatch("a Where after the Softmax other than NaN -> 0")
        _only_reader(blk, isnan.outputs[0], where)
        blk.nodes |= {isnan, where}
        probs = where.outputs[0]
    uses = list(probs.uses())
    if len(uses) != 1 or uses[0][0].op_type != "MatMul" or uses[0][1] != 0 or probs.is_graph_output():
        raise NoMatch("the attention weights are not only multiplied by the values")
    av = uses[0][0]
    blk.nodes.add(av)
    kv_names = ("B", "T", "E")
    xq, wq, bq, mq, sq = _side(blk, qk.inputs[0], qk, taken, ("B", "T", "E"), "D", ("B", "H", "T", "D"), "Pq")
    xk_src = qk.inputs[1]
    cross = _chain_to(_Block(), xk_src, taken)[0][0] is not xq
    if cross:
        kv_names = ("B", "S", "Ekv")
    s = kv_names[1]
    xk, wk, bk, mk, sk = _side(blk, xk_src, qk, taken, kv_names, "D", ("B", "H", "D", s), "Pk")
    xv, wv, bv, mv, sv_ = _side(blk, av.inputs[1], av, taken, kv_names, "Dv", ("B", "H", s, "Dv"), "Pv")
    if xv is not xk:
        raise NoMatch("keys and values are projections of different tensors")
    if sv_ != 1.0:
        raise NoMatch("the values are scaled")
    blk.scale *= sq * sk
    d = blk.axes.size["D"]
    if abs(blk.scale * math.sqrt(d) - 1.0) > 1e-5:
        raise NoMatch(f"the scores are scaled by {blk.scale:g}, not 1/sqrt({d})")
    # -> Transpose/Reshape to (B, T, H*Dv) -> MatMul(Wo) [+ bo]
    names, v = ("B", "H", "T", "Dv"), av.outputs[0]
    blk.axes.of[v] = names
    while True:
        uses = [n for n, _ in v.uses() if not (n.op_type == "Shape" and not n.domain)]
        if len(uses) != 1 or uses[0].domain or uses[0] in taken:
            raise NoMatch("the attention output is read by more than the output projection")
        n = uses[0]
        _only_reader(blk, v, n)
        if n.op_type in ("Transpose", "Reshape") and n.inputs[0] is v:
            names = blk.axes.step(n, names, "Dv")
            blk.nodes.add(n)
            v = n.outputs[0]
            blk.axes.of[v] = names
            continue
        break
    wo = const(n.inputs[1]) if n.op_type == "MatMul" and n.inputs[0] is v else None
    if names != ("B", "T", "Eo") or wo is None or wo.ndim != 2 or wo.shape[0] != blk.axes.size["Eo"]:
        raise NoMatch(f"the heads are merged to {names} and not projected by a constant MatMul")
    blk.nodes.add(n)
    blk.last, bo = n, None
    add = [u for u, _ in n.outputs[0].uses()]
    if len(add) == 1 and add[0].op_type == "Add" and not add[0].domain and not n.outputs[0].is_graph_output():
        other = add[0].inputs[1] if add[0].inputs[0] is n.outputs[0] else add[0].inputs[0]
        c = const(other)
        if c is not None and c.size == wo.shape[1] and c.shape[-1:] == (wo.shape[1],):
            bo, blk.last = c.reshape(-1), add[0]
            blk.nodes.add(add[0])
    biases = [bq, bk, bv, bo]
    if any(b is None for b in biases) and any(b is not None for b in biases):
        raise NoMatch("some projections have a bias and others not")
    h, dv = blk.axes.size["H"], blk.axes.size["Dv"]
    blk.query, blk.key_value = xq, xk if cross else None
    blk.heads, blk.key_dim, blk.value_dim = h, d, dv
    blk.use_bias = bq is not None
    blk.weights = [wq.reshape(-1, h, d), wk.reshape(-1, h, d), wv.reshape(-1, h, dv), wo.reshape(h, dv, -1)]
    if blk.use_bias:
        blk.weights = [blk.weights[0], bq.reshape(h, d), blk.weights[1], bk.reshape(h, d),
                       blk.weights[2], bv.reshape(h, dv), blk.weights[3], bo]
    blk.name = _common_source([mq, mk, mv, n]) or provenance.source_of(softmax)
    return blk


def _common_source(nodes) -> str:
    """The attention module's path: what the projections' source names share ('/a/attention')."""
    import re

    parts = [re.split(r"[/.]", provenance.source_of(n)) for n in nodes]
    common = []
    for group in zip(*parts):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return ".".join(p for p in common if p)


@fuser
def find_attention(b, graph) -> None:
    """Map each attention block's output projection to one MultiHeadAttention layer."""
    taken = set(b.dropped) | set(b.fusions) | set(b.absorbed) | set(b.dense_nd)
    mask_nodes = []
    for softmax in list(graph):
        if softmax.op_type != "Softmax" or softmax.domain or softmax in taken:
            continue
        try:
            blk = match(softmax, taken)
            if blk.nodes & taken:
                raise NoMatch("part of it is already another layer")
            # Shape nodes reading values inside the block must only feed the block's Reshapes
            if blk.shape_readers:
                dead = _shape_only(graph, b.dropped | blk.nodes)
                if not blk.shape_readers <= dead:
                    raise NoMatch("the size of a value inside the block is used elsewhere")
        except NoMatch as e:
            log.debug("attention at %s stays Dense + einsum: %s", provenance.source_of(softmax), e)
            continue
        b.dropped.update(blk.nodes - {blk.last})
        b.fusions[blk.last] = lambda ctx, blk=blk: _convert(ctx, blk)
        taken |= blk.nodes
        mask_nodes += blk.mask_nodes
    changed = True
    while changed:  # the mask arithmetic that only the fused blocks read
        changed = False
        for n in mask_nodes:
            if n not in b.dropped and all(not o.is_graph_output() and all(u in b.dropped for u, _ in o.uses())
                                          for o in n.outputs):
                b.dropped.add(n)
                changed = True


def _convert(ctx, blk):
    """The MultiHeadAttention layer doing all of `blk`, called on the query (and key/value) tensor
    and the mask it was made from; held in ONNX order (batch, sequence, width)."""
    keras = ctx.b.keras
    dtype = ctx.dtype_name(ctx.node.outputs[0])
    kwargs = {"dtype": dtype} if dtype in ("float16", "bfloat16", "float64") else {}
    out_width = blk.weights[-1].shape[-1]
    if out_width != blk.query.shape[-1]:
        kwargs["output_shape"] = (int(out_width),)
    q = ctx.b.tensor(blk.query, (0, 1, 2))
    kv = ctx.b.tensor(blk.key_value, (0, 1, 2)) if blk.key_value is not None else q
    call = {} if blk.mask is None else {"attention_mask": ctx.b.tensor(blk.mask, (0, 1, 2, 3))}
    layer = keras.layers.MultiHeadAttention(
        num_heads=blk.heads, key_dim=blk.key_dim, value_dim=blk.value_dim, use_bias=blk.use_bias,
        name=ctx.b.fresh(blk.name), trainable=ctx.b.trainable, **kwargs)
    y = layer(q, kv, **call)
    wdtype = dtype if dtype in ("float16", "bfloat16", "float64") else "float32"
    layer.set_weights([np.asarray(w, dtype=wdtype) for w in blk.weights])
    return Held(y, (0, 1, 2))
