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
            out = self.module(*[torch.from_numpy(np.array(x)) for x in inputs])  # owned, writable
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in out)


class TorchBackend(ExporterBackend):
    target = "torch"

    @classmethod
    def _rep(cls, exported):
        return TorchRep(exported)


prepare = TorchBackend.prepare
run_model = TorchBackend.run_model
is_compatible = TorchBackend.is_compatible
supports_device = TorchBackend.supports_device
