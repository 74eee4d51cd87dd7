"""Graph passes: every piece of layout knowledge lives here (DESIGN.md §1).

Each pass is an `onnx_ir.passes.InPlacePass` in its own module, registered by name with
`@register("name")`; its docstring's first line is its description (`irbridge passes`) and
the rest shows the graph before and after. `DEFAULT_PIPELINE` lists, in order, what
`irbridge.normalize` runs when no passes are named.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import onnx_ir as ir

from irbridge import provenance
from irbridge.errors import InputError


@dataclasses.dataclass(frozen=True)
class PassSpec:
    name: str
    factory: Callable[[], ir.passes.PassBase]
    description: str


REGISTRY: dict[str, PassSpec] = {}


def register(name: str, description: str | None = None):
    """Class decorator (or call with a factory) registering a pass under `name`."""

    def decorator(factory):
        doc = description or inspect.getdoc(factory) or ""
        REGISTRY[name] = PassSpec(name, factory, doc.strip().splitlines()[0] if doc else "")
        return factory

    return decorator


# The order matters; each comment says why a pass stands where it does.
DEFAULT_PIPELINE: list[str] = [
    "drop-stale-dims",  # first: every pass after it reads shapes, which must hold at every size of a free dim
    "fold-weight-layout",  # before fold-constants, which would fold the same ops but drop the marks
    "fold-kernel-flip",  # likewise: bakes Theano's kernel flips into the weights
    "recover-batchnorm",  # before fold-constants, which would merge Keras's statistics into two vectors
    "fold-constants",  # materialises weight fills and shape arithmetic as initializers
    "reshape-as-transpose",  # after folding (needs the target shape), before the transposes are cancelled
    "drop-noop-reshape",  # before the passes below, which see a Transpose's producer only without it
    "transpose-before-flatten",  # before cancel-transposes, which then moves its channels-last Transpose
    "unbatch-transpose",  # likewise: its one Transpose composes with the head split's
    "unflatten-channels-last",  # likewise: its Transpose then meets the Conv that reads the image
    "cancel-transposes",  # after folding, so constant operands can be permuted to match
    "sink-head-transposes",  # after cancel-transposes: moves only what it left, copying a Transpose per reader
    "recover-prelu",  # after cancel-transposes: the slope constants are in the canonical layout
    "eliminate-identity",  # folding and Dropout-free graphs leave Identity chains behind
    "remove-unused",  # drops what folding disconnected
    "topological-sort",  # exporters and dumps read nodes in order
    "infer-shapes",  # last: every value gets a shape for exporters, reports and Netron
]


def get(name_or_pass) -> ir.passes.PassBase:
    """A pass object from a registered name, or the pass object itself."""
    if isinstance(name_or_pass, ir.passes.PassBase):
        return name_or_pass
    _load_all()
    spec = REGISTRY.get(name_or_pass)
    if spec is None:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"unknown pass {name_or_pass!r}; the passes are: {known}.")
    return spec.factory()


def pass_name(p) -> str:
    if isinstance(p, str):
        return p
    _load_all()
    for spec in REGISTRY.values():
        if isinstance(spec.factory, type) and isinstance(p, spec.factory):
            return spec.name
    return type(p).__name__


def run(
    model: ir.Model,
    passes: Sequence | None = None,
    *,
    dump_dir: str | Path | None = None,
    on_step: Callable[[str, ir.Model], None] | None = None,
) -> ir.Model:
    """Run `passes` (names or pass objects; default pipeline when None) in place, in order.

    With `dump_dir`, writes 00-imported.onnx and NN-<pass>.onnx after each step.
    """
    names_or_passes: Iterable = DEFAULT_PIPELINE if passes is None else passes
    steps = [(pass_name(p), get(p)) for p in names_or_passes]
    if dump_dir is not None:
        _dump(model, Path(dump_dir), 0, "imported")
    applied = [n for n in model.metadata_props.get(provenance.PASSES, "").split(",") if n]
    for i, (name, p) in enumerate(steps, start=1):
        p(model)
        applied.append(name)
        model.metadata_props[provenance.PASSES] = ",".join(applied)
        if on_step is not None:
            on_step(name, model)
        if dump_dir is not None:
            _dump(model, Path(dump_dir), i, name)
    return model


def _dump(model: ir.Model, directory: Path, index: int, name: str) -> None:
    from irbridge.exporters.onnx import save_onnx

    save_onnx(model, directory / f"{index:02d}-{name}.onnx")


def _load_all() -> None:
    # Importing a pass module registers its passes.
    from . import (  # noqa: F401
        assign_nhwc,
        cancel_transposes,
        common,
        conv_to_dense,
        dense_to_conv,
        drop_noop_reshape,
        drop_stale_dims,
        fold_batchnorm,
        fold_constants,
        fold_kernel_flip,
        fold_weight_layout,
        merge_affine_into_batchnorm,
        recover_batchnorm,
        recover_prelu,
        reshape_as_transpose,
        sink_head_transposes,
        to_nhwc,
        transpose_before_flatten,
        unbatch_transpose,
        unflatten_channels_last,
    )
