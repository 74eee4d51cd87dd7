"""`irbridge.backend.torch`: an ONNX backend that runs models through the PyTorch exporter.

    import onnx.backend.test, irbridge.backend.torch as backend
    globals().update(onnx.backend.test.BackendTest(backend, __name__).test_cases)
"""

from __future__ import annotations

import numpy as np
from onnx.backend.base import BackendRep

from . import ExporterBackend


class TorchRep(BackendRep):
    def __init__(self, module):
        self.module = module

    def run(self, inputs, **kwargs):
        import torch

        if isinstance(inputs, dict):
            inputs = [inputs[n] for n in self.module.irbridge_inputs]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        with torch.no_grad():
            out = self.module(*[_to_torch(x) for x in inputs])
        out = out if isinstance(out, tuple) else (out,)
        return tuple(_to_numpy(o) for o in out)


def _to_torch(x):
    """An owned, writable tensor; bfloat16 arrays (ml_dtypes) travel as their bits."""
    import torch

    x = np.array(x)
    if x.dtype.name == "bfloat16":
        return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def _to_numpy(o):
    import torch

    if not isinstance(o, torch.Tensor):
        return np.asarray(o)
    if o.dtype == torch.bfloat16:
        import ml_dtypes

        return o.view(torch.int16).numpy().view(np.uint16).view(ml_dtypes.bfloat16)
    return o.numpy()


class TorchBackend(ExporterBackend):
    target = "torch"

    @classmethod
    def _rep(cls, exported):
        return TorchRep(exported)


prepare = TorchBackend.prepare
run_model = TorchBackend.run_model
is_compatible = TorchBackend.is_compatible
supports_device = TorchBackend.supports_device
