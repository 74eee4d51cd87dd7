"""What a check feeds a model: seeded random inputs at real sizes (DESIGN.md §6).

Every free dim is run at two different sizes, never at 1 alone: a batch at 2 and 3, any other
free dim (a sequence, a number of samples, an image side) at two sizes of 8 or more. Sizes the
graph rejects (a conv stack that needs 400 samples) are found by trying larger ones on the
reference (`size_plans` yields candidates, smallest first; the reference run takes the first
that runs). Integer inputs are drawn from the range the graph accepts: token ids below the size
of the table they index, masks as 0/1 with real padding. Nothing larger than the check's memory
budget is ever allocated.

    specs:  [("input_ids", ("batch", "sequence"), int64), ("attention_mask", ("batch", "sequence"), int64)]
    plans:  [{"input_ids": (2, 8), "attention_mask": (2, 8)}, {"input_ids": (3, 13), ...}]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping

import numpy as np
import onnx_ir as ir

from .. import dims
from ..errors import InputError

BATCH_SIZES = (2, 3)
# Sizes tried for any other free dim, pair by pair, until the graph runs at both.
LADDER = ((8, 13), (16, 24), (32, 48), (64, 96), (128, 192), (224, 256), (512, 768),
          (1024, 1600), (4000, 6400), (16000, 24000))
# Tried last, for a dim the graph accepts at one size only (a position table of 197 patches).
SINGLE_SIZES = (224, 384, 512, 1, 2, 3, 4, 7, 8)
BUDGET_ENV = "IRBRIDGE_CHECK_MEMORY"


# --------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------
def input_specs(model: ir.Model, shapes: Mapping[str, tuple] | None = None) -> list[tuple[str, tuple, np.dtype]]:
    """(name, shape, dtype) of each graph input; a free dim is its label (`"batch"`, `"?1"` for
    an unnamed one at axis 1) unless `shapes` fixes it."""
    shapes = dict(shapes or {})
    specs = []
    for v in dims.graph_inputs(model):
        if v.name in shapes:
            declared = None if v.shape is None else \
                tuple(d if isinstance(d, int) else dims.label(v, k) for k, d in enumerate(v.shape))
            shape = checked_shape(v.name, shapes[v.name], declared)
        elif v.shape is None:
            raise InputError(f"input {v.name!r} has no shape in the model; give one with --input {v.name}:D1,D2,...")
        else:
            shape = tuple(d if isinstance(d, int) else dims.label(v, k) for k, d in enumerate(v.shape))
        dtype = v.dtype.numpy() if v.dtype is not None else np.float32
        specs.append((v.name, shape, dtype))
    return specs


def checked_shape(name: str, shape, declared=None) -> tuple:
    """A user-given shape as ints (a None keeps the declared dim: its size, or its label when
    free), or an InputError naming the input and the flag."""
    given = "x".join(str(d) for d in shape) if isinstance(shape, (tuple, list)) else str(shape)
    if declared is not None and isinstance(shape, (tuple, list)) and len(shape) == len(declared) \
            and any(d is None for d in shape):
        kept = tuple(declared[k] if d is None else d for k, d in enumerate(shape))
        ints = checked_shape(name, [(w if isinstance(w, int) else 1) if d is None else d
                                    for d, w in zip(shape, declared)], declared)
        return tuple(k if d is None else i for k, d, i in zip(kept, shape, ints))
    try:
        out = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise InputError(f"input {name!r}: shape {given} is not a list of whole numbers "
                         f"(--input {name}:D1,D2,...)") from None
    if any(d < 1 for d in out):
        raise InputError(f"input {name!r}: shape {given} has a dim below 1; every dim must be a positive "
                         f"size (--input {name}:{','.join(str(max(d, 1)) for d in out)})")
    if declared is not None and len(declared) != len(out):
        raise InputError(f"input {name!r}: shape {given} has {len(out)} dims, the model's input has "
                         f"{len(declared)} (--input {name}:D1,...,D{len(declared)})")
    if declared is not None:
        for k, (d, want) in enumerate(zip(out, declared)):
            if isinstance(want, int) and want != d:
                raise InputError(f"input {name!r}: dim {k} is fixed to {want} by the model, not {d} "
                                 f"(--input {name}:{','.join(str(w if isinstance(w, int) else g) for w, g in zip(declared, out))})")
    return out


def free_labels(specs) -> dict[str, tuple[str, int]]:
    """{label: (first input, axis)} of the free dims, in input order."""
    out: dict[str, tuple[str, int]] = {}
    for name, shape, _ in specs:
        for axis, d in enumerate(shape):
            if not isinstance(d, int):
                out.setdefault(d, (name, axis))
    return out


# --------------------------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    """The shapes of the check's runs (two when any dim is free) and what the report should say."""

    shapes: list[dict[str, tuple[int, ...]]]
    note: str | None = None


def size_plans(specs, model: ir.Model | None = None) -> Iterator[Plan]:
    """Candidate run shapes, most likely first: batch-like dims (`_is_batch`) at 2 and 3, other free
    dims along LADDER, then at one size (said in the note). A dim whose size the graph fixes
    statically (the channels a Conv's weight wants) takes that size in both runs."""
    labels = free_labels(specs)
    if not labels:
        yield Plan([{n: tuple(s) for n, s, _ in specs}])
        return
    static = {lab: _static_size(model, *where) for lab, where in labels.items()} if model is not None else {}
    batch = {lab for lab, (_, axis) in labels.items() if _is_batch(lab, axis) and not static.get(lab)}
    other = [lab for lab in labels if lab not in batch and not static.get(lab)]

    def plan(sizes: list[dict[str, int]], note=None) -> Plan:
        return Plan([{n: tuple(d if isinstance(d, int) else s[d] for d in shape) for n, shape, _ in specs}
                     for s in sizes], note)

    def runs(pair) -> list[dict[str, int]]:
        return [{**{b: BATCH_SIZES[k] for b in batch}, **{o: pair[k] for o in other},
                 **{lab: size for lab, size in static.items() if size}} for k in (0, 1)]

    for pair in LADDER if other else LADDER[:1]:
        yield plan(runs(pair))
    for size in SINGLE_SIZES if other else ():
        yield plan(runs((size, size)), f"{', '.join(other)} checked at {size} only: the graph ran at no two "
                                        f"sizes tried (give sizes with --input)")


_LENGTH_WORDS = ("seq", "time", "len", "step", "token", "sample", "frame", "height", "width", "pos")


def _is_batch(label: str, axis: int) -> bool:
    """A batch-like dim, run at 2 and 3: one named so (`batch`, `N`), or an axis 0 whose name does
    not say it is a length (a time-major RNN's `(sequence, batch, feature)` input)."""
    name = str(label).lower()
    if "batch" in name or name in ("n", "b", "bs"):
        return True
    return axis == 0 and not any(word in name for word in _LENGTH_WORDS)


def _static_size(model: ir.Model, input_name: str, axis: int) -> int | None:
    """The size a graph fixes for a free dim: the input channels of a Conv reading the input."""
    value = next((v for v in model.graph.inputs if v.name == input_name), None)
    if value is None or axis != 1:
        return None
    for node, index in _readers(value, _SAME_AXES):
        if node.op_type in ("Conv", "ConvTranspose") and index == 0 and len(node.inputs) > 1:
            w = node.inputs[1]
            if w is not None and w.shape is not None and isinstance(w.shape[1], int):
                group = node.attributes.get("group")
                return int(w.shape[1]) * (group.value if group is not None else 1) \
                    if node.op_type == "Conv" else int(w.shape[0])
    return None


# ops through which an input's values keep their meaning (ids stay ids), and the subset that
# also keeps every axis where it was (channels stay at axis 1)
_PASS_THROUGH = frozenset({"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Expand", "Clip"})
_SAME_AXES = frozenset({"Cast", "Identity", "Clip"})


def _readers(value: ir.Value, through=_PASS_THROUGH, depth: int = 6):
    """(node, input index) of the nodes reading `value`, looking through the ops `through`."""
    seen, todo = set(), [(value, 0)]
    while todo:
        v, d = todo.pop()
        for node, index in v.uses():
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.op_type in through and index == 0 and d < depth and node.outputs:
                todo.append((node.outputs[0], d + 1))
            else:
                yield node, index


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
def integer_ranges(model: ir.Model | None) -> dict[str, tuple]:
    """{input: ("ids", high)} for integer inputs that index a table (a Gather's indices), and
    {input: ("mask",)} for attention masks; other integer inputs get 0/1."""
    out: dict[str, tuple] = {}
    if model is None:
        return out
    for v in dims.graph_inputs(model):
        if v.dtype is None or not v.dtype.is_integer():
            continue
        highs = []
        for node, index in _readers(v):
            if node.op_type in ("Gather", "GatherElements") and index == 1:
                data = node.inputs[0]
                axis = node.attributes.get("axis")
                axis = axis.value if axis is not None else 0
                if data is not None and data.shape is not None and isinstance(data.shape[axis], int):
                    highs.append(int(data.shape[axis]))
        if highs:
            out[v.name] = ("ids", min(highs))
        elif "mask" in v.name.lower():
            out[v.name] = ("mask",)
    return out


def random_inputs(specs, seed: int = 0, ranges: Mapping[str, tuple] | None = None) -> dict[str, np.ndarray]:
    """Seeded standard-normal floats (never constant); integers in the range `ranges` gives
    (ids below their table's size; masks as ones with trailing padding, never an empty row;
    0/1 otherwise); random bools."""
    rng = np.random.default_rng(seed)
    ranges = ranges or {}
    feeds = {}
    for name, shape, dtype in specs:
        dtype = np.dtype(dtype)
        if dtype.kind == "f" or dtype.name == "bfloat16":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            kind = ranges.get(name, ("ids", 2))
            if kind[0] == "mask" and len(shape) >= 2:
                lengths = rng.integers(max(1, shape[-1] // 2), shape[-1] + 1, size=shape[:-1])
                feeds[name] = (np.arange(shape[-1]) < lengths[..., None]).astype(dtype)
            else:
                feeds[name] = rng.integers(0, kind[1] if kind[0] == "ids" else 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[name] = rng.random(shape) < 0.5
        else:
            raise InputError(f"cannot make random values for input {name!r} of type {dtype}; pass inputs.")
    return feeds


def feeds_for(specs, shapes: Mapping[str, tuple], seed: int, ranges=None) -> dict[str, np.ndarray]:
    """Random feeds of the given shapes, after the memory budget allows them."""
    check_budget(specs, shapes)
    return random_inputs([(n, tuple(shapes[n]), d) for n, _, d in specs], seed, ranges)


# --------------------------------------------------------------------------------------------
# memory budget
# --------------------------------------------------------------------------------------------
def budget_bytes() -> int:
    """The most the check's inputs may take: IRBRIDGE_CHECK_MEMORY (bytes, or with K/M/G/T),
    else a quarter of the machine's memory."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if text:
        units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
        unit = units.get(text[-1].lower(), 1)
        try:
            return int(float(text[:-1] if unit > 1 else text) * unit)
        except ValueError:
            raise InputError(f"{BUDGET_ENV}={text!r}: expected a size such as 4G or 500M") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def check_budget(specs, shapes: Mapping[str, tuple]) -> None:
    """Refuse, before allocating anything, inputs larger than the budget (naming the largest)."""
    sizes = {n: int(np.prod(shapes[n], dtype=object)) * np.dtype(d).itemsize for n, _, d in specs}
    total, budget = sum(sizes.values()), budget_bytes()
    if total > budget:
        name = max(sizes, key=sizes.get)
        shape = "x".join(map(str, shapes[name]))
        raise InputError(f"input {name!r}: shape {shape} takes {_human(sizes[name])}; the check's inputs "
                         f"may take {_human(budget)} ({BUDGET_ENV} changes it). Give a smaller shape with "
                         f"--input {name}:D1,D2,... or skip the check with --no-check.")


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"
