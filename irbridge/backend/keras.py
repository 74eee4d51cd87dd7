"""`irbridge.backend.keras`: an ONNX backend that runs models through the Keras exporter.

Inputs and outputs are in ONNX's order (NCHW); the backend lays them out as the exported
channels-last model holds them.
"""

from __future__ import annotations

import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType


class KerasRep(BackendRep):
    def __init__(self, km):
        from ..exporters.keras import info
        from ..verify import keras_runner

        self.runner = keras_runner(km, info(km))

    def run(self, inputs, **kwargs):
        if not isinstance(inputs, (list, tuple, dict)):
            inputs = [inputs]
        feeds = inputs if isinstance(inputs, dict) else dict(zip(self.runner.input_names, inputs))
        out = self.runner.run(feeds)
        return tuple(out[n] for n in self.runner.output_names)


class KerasBackend(Backend):
    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> bool:
        """True when every node has a Keras converter (other models are skipped, not failed)."""
        from ..exporters.keras.registry import lookup

        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 18)
        return all(lookup(n.op_type, max(opset, 18), n.domain) is not None for n in model.graph.node)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> KerasRep:
        import irbridge

        m = irbridge.normalize(irbridge.load(model))
        return KerasRep(irbridge.export(m, "keras", check=False))

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


prepare = KerasBackend.prepare
run_model = KerasBackend.run_model
is_compatible = KerasBackend.is_compatible
supports_device = KerasBackend.supports_device
