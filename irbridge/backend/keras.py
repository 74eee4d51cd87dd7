"""`irbridge.backend.keras`: an ONNX backend that runs models through the Keras exporter.

Inputs and outputs are in ONNX's order (NCHW); the backend lays them out as the exported
channels-last model holds them.
"""

from __future__ import annotations

from onnx.backend.base import BackendRep

from . import ExporterBackend


class KerasRep(BackendRep):
    def __init__(self, km):
        from ..exporters.keras import info
        from ..exporters.keras.runner import keras_runner

        self.runner = keras_runner(km, info(km))

    def run(self, inputs, **kwargs):
        if not isinstance(inputs, (list, tuple, dict)):
            inputs = [inputs]
        feeds = inputs if isinstance(inputs, dict) else dict(zip(self.runner.input_names, inputs))
        out = self.runner.run(feeds)
        return tuple(out[n] for n in self.runner.output_names)


class KerasBackend(ExporterBackend):
    target = "keras"

    @classmethod
    def _rep(cls, exported):
        return KerasRep(exported)


prepare = KerasBackend.prepare
run_model = KerasBackend.run_model
is_compatible = KerasBackend.is_compatible
supports_device = KerasBackend.supports_device
