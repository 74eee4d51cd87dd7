"""ONNX Backend API adapters over irbridge's exporters (onnx.backend.base.Backend).

Each target's backend is `ExporterBackend` with the target's converter registry and a rep:
onnx's own backend test suite (onnx.backend.test.BackendTest) then runs on the exporter.
"""

from __future__ import annotations

import onnx
from onnx.backend.base import Backend, Device, DeviceType


class ExporterBackend(Backend):
    target: str = ""  # the irbridge export target

    @classmethod
    def _lookup(cls):
        """The target exporter's converter lookup (irbridge.exporters.<target>.registry)."""
        import importlib

        return importlib.import_module(f"irbridge.exporters.{cls.target}.registry").lookup

    @classmethod
    def _rep(cls, exported):
        raise NotImplementedError

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> bool:
        """True when every node has a converter (other models are skipped, not failed)."""
        lookup = cls._lookup()
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 18)
        return all(lookup(n.op_type, max(opset, 18), n.domain) is not None for n in model.graph.node)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs):
        import irbridge

        m = irbridge.normalize(irbridge.load(model))
        return cls._rep(irbridge.export(m, cls.target, check=False))

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU
