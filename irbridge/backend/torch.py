"""`irbridge.backend.torch`: an ONNX backend that runs models through the PyTorch exporter.

It lets onnx's own backend test suite (onnx.backend.test.BackendTest) exercise the exporter:

    import onnx.backend.test, irbridge.backend.torch as backend
    globals().update(onnx.backend.test.BackendTest(backend, __name__).test_cases)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType


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


class TorchBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> bool:
        """True when every node has a PyTorch converter (other models are skipped, not failed)."""
        from ..exporters.torch.registry import lookup

        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 18)
        return all(lookup(n.op_type, max(opset, 18), n.domain) is not None for n in model.graph.node)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> TorchRep:
        import irbridge

        m = irbridge.normalize(irbridge.load(model))
        return TorchRep(irbridge.export(m, "torch", check=False))

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


prepare = TorchBackend.prepare
run_model = TorchBackend.run_model
is_compatible = TorchBackend.is_compatible
supports_device = TorchBackend.supports_device
