"""Runners: something that maps {input name: array} to {output name: array}, over any model.

verify knows how to run ONNX graphs (onnx_runner.py) and plain torch modules; each exporter
registers a runner for the objects it makes (`register_runner`), so verify imports no exporter:

    register_runner(lambda obj: hasattr(obj, "irbridge_values"), torch_runner)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np
import onnx
import onnx_ir as ir

from .. import formats
from ..errors import InputError


@dataclasses.dataclass
class Runner:
    input_names: list[str]
    output_names: list[str]
    run: Callable[[dict], dict]
    specs: list | None = None  # [(name, shape with free dims as labels, dtype)] in canonical layout
    values: Callable[..., dict] | None = None  # (feeds, reference values=None) -> {onnx value: array}
    layer_map: dict[str, str] | None = None  # {source layer: onnx value holding its output}
    local: bool = False  # values() can feed each node the reference's inputs (local error)
    close: Callable[[], None] | None = None  # frees what run() holds (e.g. onnxruntime's weights)
    model: ir.Model | None = None  # the ONNX graph run, when there is one (diagnosis reruns its layers)


# (does this runner factory take the object?, factory), in registration order
_RUNNERS: list[tuple[Callable[[object], bool], Callable[[object], Runner]]] = []


def register_runner(accepts: Callable[[object], bool], factory: Callable[[object], Runner]) -> None:
    """Let verify run the objects `accepts` says yes to (an exporter's models)."""
    _RUNNERS.append((accepts, factory))


def runner_for(obj, names_in: list[str] | None = None) -> Runner:
    if isinstance(obj, Runner):
        return obj
    for accepts, factory in _RUNNERS:
        if accepts(obj):
            return factory(obj)
    from ..importers import load
    from .onnx_runner import onnx_runner

    if isinstance(obj, (ir.Model, onnx.ModelProto, str, os.PathLike)):
        return onnx_runner(load(obj) if not isinstance(obj, ir.Model) else obj)
    if formats._is_torch_module(obj):
        if names_in is None:
            raise InputError("comparing two plain torch modules needs the input names; pass an ONNX side")
        return module_runner(obj, names_in)
    return onnx_runner(load(obj))


def module_runner(module, names_in: list[str]) -> Runner:
    """Runner over a plain torch.nn.Module (the source framework itself)."""
    import torch

    def run(feeds):
        modes = {m: m.training for m in module.modules()}
        module.eval()
        try:
            with torch.no_grad():
                out = module(*[torch.from_numpy(np.array(feeds[n])) for n in names_in])
        finally:
            for m, t in modes.items():
                m.training = t
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {f"output_{i}": o.detach().cpu().numpy() for i, o in enumerate(out)}

    return Runner(list(names_in), [], run)
