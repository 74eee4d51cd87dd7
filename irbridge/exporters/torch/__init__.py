"""PyTorch exporter: ONNX -> a real torch.nn.Module built with torch.fx.

`export(model)` returns a `torch.fx.GraphModule` whose submodules are real layers named after
the source layers; `save(module, directory)` writes `model.py` (readable, self-contained,
`class Model(nn.Module)`) and `weights.safetensors`.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx_ir as ir

from ..._io import atomic_path
from ...verify.runners import register_runner
from . import runner as _runner

register_runner(_runner.accepts, _runner.torch_runner)  # verify runs what this exporter makes


def export(model: ir.Model):
    from .builder import build

    return build(model)


def save(module, directory: str | os.PathLike, source: str | None = None) -> Path:
    """Write DIR/model.py and DIR/weights.safetensors atomically (the whole directory)."""
    from . import safetensors_file
    from .codegen import module_source

    directory = Path(directory)
    text = module_source(module, source or "an ONNX graph")
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    with atomic_path(directory, directory=True) as tmp:
        (tmp / "model.py").write_text(text)
        safetensors_file.write(tmp / "weights.safetensors", state, {"format": "pt", "producer": "irbridge"})
    return directory


def load_saved(directory: str | os.PathLike):
    """Import DIR/model.py and load DIR/weights.safetensors: this executes model.py, so only
    use it on directories irbridge wrote."""
    import importlib.util

    from . import safetensors_file

    directory = Path(directory)
    spec = importlib.util.spec_from_file_location(f"irbridge_saved_{abs(hash(directory))}", directory / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import torch

    with torch.device("meta"):  # no throwaway initial weights: the file's are assigned directly
        model = mod.Model()
    model.load_state_dict(safetensors_file.read(directory / "weights.safetensors"), assign=True)
    return model.eval()


__all__ = ["export", "save", "load_saved"]
