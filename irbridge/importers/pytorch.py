"""PyTorch importer: a torch.nn.Module plus example inputs, through torch.onnx.export(dynamo=True).

Provenance comes from the exporter's name scopes: every node is tagged with the module path
of the layer it came from (`features.0`) and that layer's class (`Conv2d`); functional calls
at the top level are tagged with the aten op (`view`).

Free dims (DESIGN.md §4 `dynamic=`): axis 0 of every batched input stays free as the dim
`batch` by default, and `dynamic={name: {axis: label}}` frees more axes (one label, one
torch.export.Dim, shared by the inputs that name it). Free axes are traced at size >= 2 (a
size-1 axis is repeated: torch.export would specialize a 1). A forward that fixes the batch
(`x.reshape(1, -1)`) is traced with a static batch, recorded with torch's reason in the
model's metadata (`irbridge.dims.fixed`); an axis the user declared that cannot stay free is
an InputError. Bounded free dims (`sequence <= 512`) are recorded in `irbridge.dim_ranges`.

`inputs=`: example arrays (a tuple/list in the forward's order, or {name: array}; numpy
floats take the module's float dtype, integer/bool arrays keep theirs, tensors are used as
they are) or shapes {name: shape}, traced with a seeded standard-normal example of that
shape. A shape does not fix the batch: a PyTorch source keeps it free unless the forward
fixes it (declare the other axes with `dynamic=`).

The graph's initializers share memory with the module's parameters (no copy is made):
convert before training the module further, or save the graph first.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import json
import keyword
import logging
import math
import re
import warnings

import numpy as np
import onnx_ir as ir

from .. import dims, provenance
from ..errors import InputError, UnsupportedError
from . import dynamic_spec
from .source_check import check_against_source

BATCH = "batch"  # the default free dim: axis 0 of every batched input
RANGES = "irbridge.dim_ranges"  # model metadata: JSON {label: [min, max or null]} for bounded free dims
_MAX_EXAMPLE_BYTES = 1 << 33  # 8 GiB: a shape in `inputs=` larger than this is refused


@dataclasses.dataclass(frozen=True)
class _Axis:
    label: str
    declared: bool  # the user asked for it (dynamic=); the default batch is not


class _Failed(Exception):
    """torch.export could not trace: `reason` is torch's message in one line; `specialized`
    the labels torch says must be constants (None when the failure names no dim)."""

    def __init__(self, reason: str, specialized: set[str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.specialized = specialized


def load(module, weights=None, inputs=None, dynamic=None) -> ir.Model:
    """Trace `module` with example `inputs` into ONNX, keeping the batch and the `dynamic`
    axes free (see the module's docstring)."""
    import torch

    if weights is not None:
        raise InputError("a torch.nn.Module holds its own weights; drop the `weights` argument.")
    if inputs is None:
        raise InputError(
            f"a torch.nn.Module ({type(module).__name__}) needs example inputs to be traced: "
            "pass inputs=(tensor, ...) or inputs={'x': (1, 3, 224, 224)}."
        )
    names, values, as_kwargs = _examples(module, inputs, torch)
    axes, fixed = _free_axes(names, values, dynamic_spec.normalize(dynamic), torch)
    modes = {m: m.training for m in module.modules()}
    module.eval()  # inference graph; the caller's train/eval flags are restored below
    try:
        with _quiet():
            program, free, batch_fixed, failure = _trace(module, names, values, as_kwargs, axes, torch)
            onnx_program = _to_onnx(module, program, names, values, as_kwargs, failure, torch)
    finally:
        for m, training in modes.items():
            m.training = training
    if program is None:  # torch.onnx's fallbacks traced it, every dim static
        _static_only(module, axes, failure)
        why = (f"torch.export cannot trace the module ({failure.reason}); torch.onnx's fallback "
               "traced it with every dim static")
        sizes = dict(zip(names, values))
        batch_fixed = [(n, a, int(sizes[n].shape[a]), why) for n, a in axes]
    fixed += batch_fixed
    model = onnx_program.model
    if program is not None:
        _name_dims(model, program, free)
    for entry in fixed:
        dims.fix(model, *entry)
    for node in model.graph:
        _tag(node)
    _drop_synthesized_bias(model, module)
    _check_against_module(model, module, program, names, as_kwargs, torch)
    return model


def _check_against_module(model: ir.Model, module, program, names, as_kwargs, torch) -> None:
    """The import check: the graph must compute what the module computes, at two sizes of every
    free dim (the module run in eval mode and without gradients, its flags restored after).
    Skipped, and said in `irbridge.import_check`, where the graph's inputs or outputs are not
    the forward's tensors one for one (static list/dict arguments; torch.onnx's fallbacks)."""
    inputs = [v.name for v in model.graph.inputs if v.name not in model.graph.initializers]
    outputs = len(program.graph_signature.user_outputs) if program is not None else None
    if sorted(inputs) != sorted(names) or outputs != len(model.graph.outputs):
        model.metadata_props["irbridge.import_check"] = (
            "torch: not run (the graph's inputs and outputs are not the forward's tensors one for one)")
        return

    def run(xs):
        args = [torch.from_numpy(np.ascontiguousarray(x)) for x in xs]
        by_name = dict(zip(inputs, args))
        modes = {m: m.training for m in module.modules()}
        module.eval()
        try:
            with torch.no_grad():
                out = module(**by_name) if as_kwargs else module(*[by_name[n] for n in names])
        finally:
            for m, training in modes.items():
                m.training = training
        return [t.detach().cpu().numpy() for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]

    check_against_source(model, "torch", run)


def _to_onnx(module, program, names, values, as_kwargs, failure, torch):
    """The ExportedProgram in ONNX; without one (torch.export failed even with every dim
    static), torch.onnx's own fallbacks (strict tracing, draft export) on the static example."""
    if program is not None:
        target, args, kwargs = program, (), None
    else:
        target = module
        args, kwargs = ((), dict(zip(names, values))) if as_kwargs else (tuple(values), None)
    # torch names the inputs after the forward's parameters (`xs_0` for a list's first tensor)
    # and drops constants; a dict of tensors passed in order is named after its keys
    plain = not as_kwargs and all(isinstance(v, torch.Tensor) for v in values)
    try:
        return torch.onnx.export(target, args, kwargs=kwargs, dynamo=True, optimize=False,
                                 input_names=names if plain else None, verbose=False)
    except Exception as e:
        reason = failure.reason if failure is not None else _reason(str(e))
        raise UnsupportedError(
            f"torch.onnx.export could not trace {type(module).__name__}: {reason}. Make the forward "
            "traceable (no data-dependent Python control flow) or export it to ONNX yourself."
        ) from e


def _static_only(module, axes: dict, failure) -> None:
    """Only torch.onnx's static fallbacks traced the module: an axis the user asked to free is
    an error; the default batch is fixed (recorded by the caller)."""
    declared = [(n, a, ax.label) for (n, a), ax in axes.items() if ax.declared]
    if declared:
        which = ", ".join(f"{n} axis {a} ({label})" for n, a, label in declared)
        raise InputError(
            f"{type(module).__name__} cannot leave {which} free: torch.export cannot trace it "
            f"({failure.reason}); only a static trace works. Drop it from --dynamic NAME:AXIS[=label] / dynamic=."
        )


def _trace(module, names, values, as_kwargs, axes, torch):
    """-> (ExportedProgram or None, the axes it keeps free, dims fixed on the way, the
    static failure or None).

    First every free axis; when that fails and the default batch is in question, the batch
    static (recorded with torch's reason); an axis the user declared is never dropped silently."""
    declared = {k: a for k, a in axes.items() if a.declared}
    defaults = {k: a for k, a in axes.items() if not a.declared}
    try:
        return _export(module, names, values, as_kwargs, axes, torch), axes, [], None
    except _Failed as first:
        failure = first
    if defaults and (failure.specialized is None or BATCH in failure.specialized):
        why = f"the module's forward fixes it: {failure.reason}"
        try:
            program = _export(module, names, values, as_kwargs, declared, torch)
        except _Failed as second:
            failure = second
        else:
            sizes = dict(zip(names, values))
            return program, declared, [(n, a, int(sizes[n].shape[a]), why) for n, a in defaults], None
    if not declared:
        return None, {}, [], failure
    if failure.specialized is None:  # the declared axes, or the module itself?
        try:
            _export(module, names, values, as_kwargs, {}, torch)
        except _Failed as static:
            return None, {}, [], static
    asked = [k for k, a in declared.items() if not failure.specialized or a.label in failure.specialized]
    which = ", ".join(f"{n} axis {a} ({declared[(n, a)].label})" for n, a in asked)
    raise InputError(
        f"{type(module).__name__} cannot leave {which} free: {failure.reason}. Drop it from "
        f"--dynamic NAME:AXIS[=label] / dynamic=, or trace with an example of the size it needs."
    )


def _export(module, names, values, as_kwargs, axes, torch):
    """torch.export with `axes` free (each label one torch.export.Dim), every free axis traced
    at size >= 2; range fixes torch suggests are taken, a fix to a constant is a _Failed."""
    from torch.export import Dim
    from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

    made: dict[str, object] = {}
    internal: dict[str, str] = {}  # Dim name -> label (a label need not be an identifier)

    def dim(label):
        if label not in made:
            name = label if label.isidentifier() and not keyword.iskeyword(label) else f"irbridge_dim{len(made)}"
            made[label] = Dim(name)
            internal[name] = label
        return made[label]

    example, shapes = [], []
    for name, value in zip(names, values):
        free = {a: dim(ax.label) for (n, a), ax in sorted(axes.items()) if n == name}
        example.append(_at_least_two(value, free, torch) if free else value)
        # a list/dict of tensors stays static, in a spec of its own structure
        shapes.append(free or torch.utils._pytree.tree_map(lambda _: None, value))
    if as_kwargs:
        args, kwargs, spec = (), dict(zip(names, example)), dict(zip(names, shapes))
    else:
        args, kwargs, spec = tuple(example), None, tuple(shapes)
    if not axes:
        spec = None
    for _ in range(4):
        try:
            return torch.export.export(module, args, kwargs, dynamic_shapes=spec, strict=False)
        except Exception as e:
            msg = str(e)
            fixes = _suggested_fixes(msg) if spec is not None else None
            if not fixes:
                program = _derived(module, args, kwargs, spec, example, torch) if spec is not None else None
                if program is not None:
                    return program
                raise _Failed(_reason(msg, internal)) from e
            constants = {internal.get(n, n) for n in re.findall(r"^\s*(\w+) = -?\d+\s*$", fixes, re.M)}
            if constants:
                raise _Failed(_reason(msg, internal), constants) from e
            try:
                spec = refine_dynamic_shapes_from_suggested_fixes(fixes, spec)
            except Exception:
                raise _Failed(_reason(msg, internal)) from e
    raise _Failed("torch.export kept narrowing the free dims")


def _derived(module, args, kwargs, spec, example, torch):
    """torch.export with Dim.DYNAMIC in place of each named Dim, or None. A named Dim fails on
    a guard torch cannot prove for every size (a conv stack's `1 % (samples // 20 - 1) != 0`);
    DYNAMIC lets torch derive the bounds instead (`samples >= 40`, kept in RANGES). Only taken
    when every free axis of these plain-tensor inputs stayed symbolic."""
    from torch.export import Dim

    if not all(isinstance(v, torch.Tensor) for v in example):
        return None

    def auto(entry):
        return {a: Dim.DYNAMIC for a in entry} if isinstance(entry, dict) and entry else entry

    shapes = {k: auto(v) for k, v in spec.items()} if isinstance(spec, dict) else tuple(auto(v) for v in spec)
    try:
        program = torch.export.export(module, args, kwargs, dynamic_shapes=shapes, strict=False)
    except Exception:  # noqa: BLE001 - the caller reports the named Dims' failure
        return None
    wanted = list(spec.values()) if isinstance(spec, dict) else list(spec)
    fakes = [n.meta.get("val") for n in program.graph.nodes
             if n.op == "placeholder" and n.name in program.graph_signature.user_inputs]
    for fake, entry in zip(fakes, wanted):
        if isinstance(entry, dict) and any(not isinstance(fake.shape[a], torch.SymInt) for a in entry):
            return None  # torch made a requested axis static: not free after all
    return program


def _at_least_two(value, free: dict, torch):
    """torch.export specializes a size of 1 (0/1 specialization): repeat such an axis to 2."""
    for axis in free:
        if value.shape[axis] == 1:
            value = torch.cat([value, value], dim=axis)
    return value


def _suggested_fixes(msg: str) -> str | None:
    """The "Suggested fixes:" block of a constraint violation (without the text after it)."""
    if "Suggested fixes:" not in msg:
        return None
    lines = []
    for line in msg.split("Suggested fixes:", 1)[1].splitlines():
        if line.strip():
            lines.append(line)
        elif lines:
            break
    return "Suggested fixes:\n" + "\n".join(lines) if lines else None


def _reason(msg: str, internal: dict | None = None) -> str:
    """torch's message in one line: the first line, or a constraint violation's first item."""
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    line = lines[0]
    if line.startswith("Constraints violated"):
        line = next((ln[2:] for ln in lines if ln.startswith("- ")), line)
        line = line.split(". If you")[0].rstrip(".")
    for name, label in (internal or {}).items():
        if name != label:
            line = re.sub(rf"\b{re.escape(name)}\b", label, line)
    return line if len(line) <= 300 else line[:297] + "..."


def _free_axes(names, values, declared: dict, torch):
    """-> ({(input, axis): _Axis}, [fixed (input, axis, size, why)]): the user's `dynamic`
    axes, and axis 0 of every tensor input of rank >= 1 whose size is the batch's."""
    known = dict(zip(names, values))
    flag = "--dynamic NAME:AXIS[=label] / dynamic="
    axes: dict[tuple[str, int], _Axis] = {}
    for name, spec in declared.items():
        if name not in known:
            raise InputError(
                f"{flag} names {name!r}, which is not an input of the module "
                f"(its inputs: {', '.join(names) or 'none'})."
            )
        value = known[name]
        rank = value.dim() if isinstance(value, torch.Tensor) else 0
        for axis, label in spec.items():
            a = axis + rank if axis < 0 else axis
            if not 0 <= a < rank:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise InputError(
                    f"{flag}: axis {axis} of input {name!r} is out of range (its example is {shape}, "
                    f"rank {rank})."
                )
            axes[(name, a)] = _Axis(label or dynamic_spec.default_label(name, a), True)
    batched = [(n, v) for n, v in known.items() if isinstance(v, torch.Tensor) and v.dim() >= 1]
    fixed = []
    if batched:
        first, size = batched[0][0], int(batched[0][1].shape[0])
        for name, value in batched:
            if (name, 0) in axes:
                continue
            if int(value.shape[0]) == size:
                axes[(name, 0)] = _Axis(BATCH, False)
            else:
                fixed.append((name, 0, int(value.shape[0]),
                              f"its axis 0 ({value.shape[0]}) is not the batch of {first!r} ({size}); "
                              f"free it with --dynamic {name}:0=LABEL"))
    return axes, fixed


def _name_dims(model: ir.Model, program, axes: dict) -> None:
    """Give the free dims their labels. torch names them after its symbols (`s77`), also in
    shape arithmetic (`144*s77`); the graph inputs say which symbol is which label. Bounded
    dims (a position table of 64: `sequence <= 64`) are recorded in RANGES."""
    rename: dict[str, str] = {}
    for value in model.graph.inputs:
        for (name, axis), ax in axes.items():
            if name == value.name and value.shape is not None and axis < len(value.shape):
                dim = value.shape[axis]
                if isinstance(dim, ir.SymbolicDim) and dim.value:
                    rename.setdefault(dim.value, ax.label)
    if not rename:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b")

    def relabel(value: ir.Value) -> None:
        if value.shape is None:
            return
        new = [ir.SymbolicDim(pattern.sub(lambda m: rename[m.group(1)], d.value))
               if isinstance(d, ir.SymbolicDim) and d.value else d for d in value.shape]
        if new != list(value.shape):
            value.shape = ir.Shape(new)

    for value in (*model.graph.inputs, *model.graph.outputs):
        relabel(value)
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        for value in node.outputs:
            relabel(value)
    import sympy

    ranges = {}
    for symbol, bounds in getattr(program, "range_constraints", {}).items():
        label = rename.get(str(symbol))
        lower = int(bounds.lower) if isinstance(bounds.lower, sympy.Integer) else 0
        upper = int(bounds.upper) if isinstance(bounds.upper, sympy.Integer) else None
        if label is None or (upper is None and lower <= 2):
            continue  # not a free input dim, or unbounded (torch's int_oo, sizes from 0 or 2)
        ranges[label] = [lower, upper]
    if ranges:
        model.metadata_props[RANGES] = json.dumps(ranges, sort_keys=True)

def _drop_synthesized_bias(model: ir.Model, module) -> None:
    """torch.onnx gives a Conv of a layer with `bias=False` a computed all-zero bias
    (Expand(CastLike(0), [C])). Drop it, so that the port has the source's parameters:
    `nn.Conv2d(..., bias=False)` again, not a zero bias to load, save and add.

        before: Conv(x, features.0.weight, Expand(CastLike(Constant 0), [32]))
        after:  Conv(x, features.0.weight)
    """
    for node in model.graph:
        if node.op_type not in ("Conv", "ConvTranspose") or node.domain or len(node.inputs) < 3:
            continue
        bias = node.inputs[2]
        if bias is None or bias.producer() is None:  # none, or a stored parameter
            continue
        try:
            layer = module.get_submodule(node.metadata_props.get(provenance.SOURCE, ""))
        except AttributeError:
            continue
        if getattr(layer, "bias", True) is None:
            node.resize_inputs(2)


def _examples(module, inputs, torch):
    """`inputs=` -> (names, example values, pass them as keywords?).

    A dict gives names; it is passed by keyword when every name is a parameter of the
    forward, else in order. A tuple/list is positional, named after the forward's
    parameters. numpy float arrays take the module's float dtype, integer and bool arrays
    keep theirs, torch tensors are used as they are; a shape in a dict is a seeded
    standard-normal example of that shape in the module's dtype."""
    dtype = _float_dtype(module, torch)
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    kinds = inspect.Parameter
    if isinstance(inputs, dict):
        names = [str(k) for k in inputs]
        values = [_example(n, v, dtype, i, torch, shapes=True) for i, (n, v) in enumerate(zip(names, inputs.values()))]
        keywords = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
        return names, values, bool(names) and all(n in keywords for n in names)
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    positional = [p.name for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    names = [positional[i] if i < len(positional) else f"input_{i}" for i in range(len(inputs))]
    return names, [_example(n, v, dtype, i, torch, shapes=False) for i, (n, v) in enumerate(zip(names, inputs))], False


def _example(name, spec, dtype, seed, torch, shapes: bool):
    if isinstance(spec, torch.Tensor):
        return spec
    if isinstance(spec, np.ndarray) or (hasattr(spec, "__array__") and hasattr(spec, "shape")):
        array = np.asarray(spec)
        if array.dtype == object:
            raise InputError(f"inputs=: {name!r} is an object array, not numbers.")
        tensor = torch.tensor(array)  # a copy: the caller's array is never touched
        return tensor.to(dtype) if array.dtype.kind == "f" else tensor
    if shapes and _is_shape(spec):
        shape = tuple(int(d) for d in spec)
        if any(d < 1 for d in shape):
            raise InputError(f"inputs=: the shape of {name!r} is {shape}; every dim must be >= 1 "
                             f"(--input NAME:D1,D2,... / inputs={{name: shape}}).")
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if nbytes > _MAX_EXAMPLE_BYTES:
            raise InputError(f"inputs=: the shape of {name!r}, {shape}, needs {nbytes / 2**30:.0f} GiB "
                             f"for one example; give a smaller shape (--input NAME:D1,D2,... / inputs=).")
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)
    return spec  # a non-tensor argument (a flag, a number, None): traced as a constant


def _is_shape(spec) -> bool:
    return isinstance(spec, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in spec)


def _float_dtype(module, torch):
    """The dtype of the module's first floating parameter or buffer (float32 when none)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32

def _tag(node: ir.Node) -> None:
    props = node.metadata_props
    scopes = _literal(props.get("pkg.torch.onnx.name_scopes"))
    classes = _literal(props.get("pkg.torch.onnx.class_hierarchy"))
    if not scopes or not classes:
        return
    if len(scopes) > 2:  # ['', 'features', 'features.0', 'conv2d']: a module's op
        props[provenance.SOURCE] = scopes[-2]
        props[provenance.SOURCE_OP] = classes[-2].rsplit(".", 1)[-1]
    else:  # ['', 'view']: a functional call in the top-level forward
        props[provenance.SOURCE] = scopes[-1]
        props[provenance.SOURCE_OP] = classes[-1].removesuffix(".default")


def _literal(text):
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


@contextlib.contextmanager
def _quiet():
    """torch.onnx.export prints progress and warnings about torchvision; keep stderr clean."""
    # a failed trace is raised, not logged: fake_tensor and symbolic_shapes log it at ERROR
    names = ("torch.onnx", "torch._dynamo", "torch.export", "torch._export", "torch._subclasses",
             "torch.fx.experimental.symbolic_shapes")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
