"""Helpers of the attention recognizer (ops/attention.py): shape tensors evaluated symbolically
(Shape/Gather/Concat/Slice arithmetic -> sizes and references to a value's dims) and the axes of
the values along an attention block tracked by name, so that a Reshape is taken only where it
splits the width into (heads, head_dim), merges them back in that order, or changes nothing.

    Concat(Unsqueeze(Gather(Shape(x), 0)), Unsqueeze(Gather(Shape(x), 1)), [-1], [8])
        -> [("dim", x, 0), ("dim", x, 1), -1, 8]    # x: (B, T, E=32)  =>  (B, T, H=4, D=8)
"""

from __future__ import annotations


class NoMatch(Exception):
    """The graph is not exactly an attention block (the message says why)."""


def const(v):
    if v is None or v.const_value is None or v.is_graph_input():
        return None
    return v.const_value.numpy()


def scalar(v):
    c = const(v)
    return None if c is None or c.size != 1 or c.dtype.kind != "f" else float(c.reshape(-1)[0])


# --- symbolic shape tensors -----------------------------------------------------------------------
def entries(v, depth=0):
    """A 1-D int64 shape tensor as a list of ints and ("dim", value, axis) refs, or None."""
    c = const(v)
    if c is not None:
        return [int(x) for x in c.reshape(-1)] if c.dtype.kind in "iu" else None
    p = v.producer()
    if p is None or p.domain or depth > 16:
        return None
    op, ins = p.op_type, p.inputs
    if op == "Shape":
        src = ins[0]
        if src.shape is None:
            return None
        rank = len(src.shape)
        start, end = p.attributes.get_int("start", 0), p.attributes.get_int("end", rank)
        start, end = start + rank if start < 0 else start, end + rank if end < 0 else end
        return [d if isinstance(d, int) else ("dim", src, i) for i, d in enumerate(src.shape) if start <= i < end]
    if op in ("Identity", "Cast", "Unsqueeze", "Squeeze"):
        e = entries(ins[0], depth + 1)
        return e if e is not None and (op in ("Identity", "Cast") or len(e) == 1) else None
    if op == "Concat":
        parts = [entries(i, depth + 1) for i in ins]
        return None if any(x is None for x in parts) else [e for x in parts for e in x]
    if op == "Gather":
        data, idx = entries(ins[0], depth + 1), const(ins[1])
        if data is None or idx is None or p.attributes.get_int("axis", 0) != 0:
            return None
        try:
            return [data[int(i)] for i in idx.reshape(-1)]
        except IndexError:
            return None
    if op == "Slice":
        data = entries(ins[0], depth + 1)
        bounds = [const(ins[k]) if len(ins) > k and ins[k] is not None else None for k in range(1, 5)]
        if data is None or bounds[0] is None or bounds[1] is None or \
                (bounds[2] is not None and bounds[2].reshape(-1).tolist() not in ([0], [-1])) or \
                (bounds[3] is not None and bounds[3].reshape(-1).tolist() != [1]):
            return None
        return data[int(bounds[0].reshape(-1)[0]):int(bounds[1].reshape(-1)[0])]
    if op in ("Div", "Mul"):
        a, b = entries(ins[0], depth + 1), entries(ins[1], depth + 1)
        if a is None or b is None or len(a) != 1 or len(b) != 1 or not all(isinstance(x[0], int) for x in (a, b)):
            return None
        if op == "Mul":
            return [a[0] * b[0]]
        return [a[0] // b[0]] if b[0] and a[0] % b[0] == 0 else None
    return None


class Axes:
    """Axis names of the values along the block: B, T (query positions), S (key positions; T in
    self-attention), E (width), H (heads), D / Dv (per-head widths of keys / values), Eo."""

    def __init__(self):
        self.of: dict = {}  # ir.Value -> tuple of axis names
        self.size: dict = {}  # axis name -> int (where known)
        self.symbols: dict = {}  # the input's named free dims ('batch') -> axis name

    def start(self, x, names):
        self.of[x] = names
        for n, d in zip(names, x.shape):
            if isinstance(d, int):
                self.size.setdefault(n, d)
            elif getattr(d, "value", None):  # a named free dim: the same size wherever it is read
                self.symbols.setdefault(d.value, n)

    def _is(self, entry, name):
        return entry == name or (isinstance(entry, int) and self.size.get(name) == entry)

    def _set(self, name, n):
        if self.size.setdefault(name, n) != n:
            raise NoMatch(f"{name} is {n} here and {self.size[name]} elsewhere")

    def step(self, node, names, head_dim):
        """The axis names of `node`'s output, given its data input's."""
        if node.op_type == "Transpose":
            perm = node.attributes.get_ints("perm", None)
            if perm is None or len(perm) != len(names):
                raise NoMatch("a Transpose without perm")
            return tuple(names[p] for p in perm)
        if node.op_type != "Reshape":
            return names  # a scalar Mul/Div
        raw = entries(node.inputs[1])
        if raw is None:
            raise NoMatch(f"the target shape of {node.name} is not known")
        allowzero = node.attributes.get_int("allowzero", 0)
        out = []
        for k, e in enumerate(raw):
            if isinstance(e, tuple):
                src, dim = self.of.get(e[1]), e[1].shape[e[2]]
                if src is None and getattr(dim, "value", None) not in self.symbols:
                    raise NoMatch(f"{node.name} reads the size of a value outside the block")
                out.append(src[e[2]] if src is not None else self.symbols[dim.value])
            elif e == 0 and not allowzero and k < len(names):
                out.append(names[k])
            else:
                out.append(None if e == -1 else e)
        if sum(e is None for e in out) > 1:
            raise NoMatch(f"{node.name} has two inferred sizes")
        if len(names) == 3 and len(out) == 4 and self._is(out[0], names[0]) and \
                (out[1] is None or self._is(out[1], names[1])):  # split the width into heads
            width = self.size.get(names[2])
            h, d = out[2], out[3]
            if width is None or (h is None and d is None) or (out[1] is None and None in (h, d)) or \
                    isinstance(h, str) or isinstance(d, str):
                raise NoMatch(f"{node.name} is not a split of the width into heads")
            h = width // d if h is None else h
            d = width // h if d is None else d
            if h * d != width:
                raise NoMatch(f"{node.name} splits {width} into {h} x {d}")
            self._set("H", h)
            self._set(head_dim, d)
            return names[0], names[1], "H", head_dim
        if len(names) == 4 and len(out) == 4 and all(e is None or self._is(e, n) for e, n in zip(out, names)):
            return names  # a Reshape that changes nothing
        if len(names) == 4 and len(out) == 3 and all(self._is(e, n) or e is None and k == 0
                                                      for k, (e, n) in enumerate(zip(out, (None,) + names[2:]))):
            return (names[0] + "*" + names[1],) + names[2:]  # (B, H, S, D) -> (B*H, S, D)
        if len(names) == 3 and "*" in names[0] and len(out) == 4 and \
                all(e is None and k < 2 or self._is(e, n) for k, (e, n) in
                    enumerate(zip(out, tuple(names[0].split("*")) + names[1:]))) and out.count(None) <= 1:
            return tuple(names[0].split("*")) + names[1:]  # and back
        if len(names) == 4 and names[2:] == ("H", "Dv") and len(out) == 3 and self._is(out[0], names[0]) \
                and (out[1] is None or self._is(out[1], names[1])):  # merge the heads back
            width = self.size["H"] * self.size["Dv"]
            if out[2] is not None and out[2] != width or out[1] is None and out[2] is None:
                raise NoMatch(f"{node.name} is not a merge of the heads")
            self._set("Eo", width)
            return names[0], names[1], "Eo"
        raise NoMatch(f"{node.name} reshapes {names} to {out}")
