"""What a Keras model takes and how it is called: the input specs of the Keras import (free
dims kept, `inputs=` examples or shapes), and the call convention (one tensor, several
arguments, one list, or a dict of named inputs as keras-hub's backbones take)."""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import InputError


def _input_specs(km, inputs, tf) -> tuple[list, list]:
    """(tf.TensorSpecs of the inputs, [(input, axis, size, why)] dims fixed on the way in).

    Keras's free dims (None) stay free. `inputs` may be example arrays (a tuple/list in input
    order, or {name: array}): they give the shapes Keras does not know, never fix a free dim,
    and the batch of a subclassed model stays free. Shapes ({name: shape}, None for a free
    dim) fix the dims they give.
    """
    declared = _declared_inputs(km)
    given = _given_inputs(inputs)
    if given is None:
        if declared is None:
            raise InputError(
                f"Keras model {km.name!r} is subclassed and has never been built or called, so Keras "
                f"knows no input shape: call it once, or pass example arrays inputs=(x,) (the batch "
                f"stays free) or shapes inputs={{'x': (1, 224, 224, 3)}}") from None
        return [tf.TensorSpec(shape, dtype, name=name) for name, shape, dtype in declared], []
    functional = _is_functional(km)
    if not functional:
        declared = None  # what a subclassed model was built with is no declaration: the inputs win
    if declared is not None and len(given) != len(declared):
        raise InputError(f"Keras model {km.name!r} takes {len(declared)} input(s) "
                         f"({', '.join(n for n, _, _ in declared)}); inputs= gives {len(given)}")
    if declared is not None and functional and all(name is not None for name, _ in given):
        known = [n for n, _, _ in declared]
        unknown = [name for name, _ in given if name not in known]
        if unknown or len({n for n, _ in given}) != len(known):
            raise InputError(f"inputs= names {unknown or [n for n, _ in given]}; Keras model "
                             f"{km.name!r} has inputs {known}")
        by_name = dict(given)
        given = [(n, by_name[n]) for n, _, _ in declared]  # Keras takes them in its own order
    names = _call_input_names(km, len(given))
    specs, fixed = [], []
    for i, (name, value) in enumerate(given):
        decl = declared[i] if declared is not None else None
        name = decl[0] if decl is not None else (name or names[i])
        shape, dtype, why = _given_shape(km, name, value, decl)
        fixed += [(name, axis, d, why) for axis, d in enumerate(shape)
                  if d is not None and why is not None and (decl is None or decl[1][axis] is None)]
        specs.append(tf.TensorSpec(shape, dtype, name=name))
    return specs, fixed


FIXED_BY_INPUTS = "fixed by --input / inputs="  # as irbridge.load says it


FROM_EXAMPLE = "taken from the example array: a subclassed Keras model declares no input shape"


def _given_shape(km, name, value, decl):
    """(shape, dtype, why its non-free dims are fixed) for one entry of `inputs=`."""
    if _is_array(value):
        shape = tuple(int(d) for d in value.shape)
        if decl is None:  # a subclassed model: the batch stays free, the rest is the example's
            dtype = np.dtype(getattr(value.dtype, "as_numpy_dtype", value.dtype))
            return (None, *shape[1:]), (dtype.name if dtype.kind in "fiub" else "float32"), FROM_EXAMPLE
        _agree(km, name, shape, decl[1], "the example array")
        return tuple(decl[1]), decl[2], None  # examples never fix a free dim
    shape = tuple(None if d is None else int(d) for d in value)
    if any(d is not None and d <= 0 for d in shape):
        raise InputError(f"inputs= shape {list(value)} for {name!r}: every dim must be positive (or None)")
    if decl is None:
        return shape, "float32", FIXED_BY_INPUTS
    _agree(km, name, shape, decl[1], "inputs=")
    return shape, decl[2], FIXED_BY_INPUTS


def _agree(km, name, shape, declared, what):
    if len(shape) != len(declared) or any(d is not None and g is not None and g != d
                                          for g, d in zip(shape, declared)):
        raise InputError(f"{what} for input {name!r} of Keras model {km.name!r} has shape "
                         f"{list(shape)}; the model takes {list(declared)} (None: any size)")


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in value)


def _given_inputs(inputs) -> list[tuple[str | None, object]] | None:
    """`inputs=` as [(name or None, array or shape)], in order."""
    if inputs is None:
        return None
    if isinstance(inputs, dict):
        items = [(str(k), v) for k, v in inputs.items()]
    elif _is_array(inputs) or (_is_shape(inputs) and inputs):
        items = [(None, inputs)]
    elif isinstance(inputs, (tuple, list)):
        items = [(None, v) for v in inputs]
    else:
        raise InputError(f"inputs= takes example arrays (a tuple/list, or {{name: array}}) or "
                         f"{{name: shape}}, not {type(inputs).__name__}")
    for name, v in items:
        if not (_is_array(v) or _is_shape(v)):
            raise InputError(f"inputs= entry {name or len(items)!r} is a {type(v).__name__}: give an "
                             "array (an example) or a shape (a tuple of ints, None for a free dim)")
    return items or None


def _is_functional(km) -> bool:
    try:
        return bool(km.inputs)
    except (AttributeError, ValueError):  # a subclassed model has none
        return False


def _declared_inputs(km) -> list[tuple[str, tuple, str]] | None:
    """[(name, shape with None for free dims, dtype)] as Keras knows them: a functional model's
    Input layers, or the shape a subclassed model was built or first called with (its batch
    freed). None when Keras knows none."""
    if _is_functional(km):
        return [(t.name.split(":")[0], tuple(t.shape), str(getattr(t.dtype, "name", t.dtype)))
                for t in km.inputs]
    built = getattr(km, "_build_shapes_dict", None) if getattr(km, "built", False) else None
    if not built or len(built) != 1:
        return None
    shape = next(iter(built.values()))
    shapes = list(shape) if isinstance(shape, list) and shape and not _is_shape(shape) else [shape]
    if not all(_is_shape(s) and len(s) >= 1 for s in shapes):
        return None
    names = _call_input_names(km, len(shapes))
    if len(shapes) == 1 and len(_positional(km)) > 1:
        return None  # called with several tensors: Keras recorded only the first one's shape
    return [(name, (None, *s[1:]), "float32") for name, s in zip(names, shapes)]


def _positional(km) -> list[str]:
    """The names of `call`'s tensor arguments (those without defaults, but training and mask)."""
    params = inspect.signature(km.call).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.default is p.empty and p.name not in ("self", "training", "mask")]


def _call_input_names(km, n: int) -> list[str]:
    """Names for a subclassed model's n inputs: `call`'s arguments, or `<first>_<i>` when it
    takes them as one list."""
    pos = _positional(km) or ["input"]
    if n == 1:
        return [pos[0]]
    return pos[:n] if len(pos) >= n else [f"{pos[0]}_{i}" for i in range(n)]


def _call_args(km, xs) -> tuple:
    """How Keras is called with the inputs xs: one tensor, several arguments, one list, or one
    dict (a functional model built on a dict of inputs, as keras-hub's backbones are)."""
    keys = _input_keys(km)
    if keys is not None:
        return ({key: xs[i] for key, i in keys.items()},)
    if len(xs) == 1:
        return (xs[0],)
    return tuple(xs) if len(_positional(km)) >= len(xs) and not _is_functional(km) else (list(xs),)


def _input_keys(km) -> dict[str, int] | None:
    """{key: index in km.inputs} for a functional model whose inputs are a dict, else None."""
    if not _is_functional(km):
        return None
    struct = getattr(km, "_inputs_struct", None)
    if not isinstance(struct, dict):
        return None
    index = {id(t): i for i, t in enumerate(km.inputs)}
    keys = {key: index.get(id(t)) for key, t in struct.items()}
    return keys if None not in keys.values() else None
