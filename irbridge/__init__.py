"""irbridge: move trained networks between frameworks through ONNX, and prove the result matches.

    import irbridge
    m = irbridge.load("model.onnx")          # or a torch.nn.Module with inputs=...
    m = irbridge.normalize(m)
    net = irbridge.export(m, "torch")         # verified against onnxruntime
    irbridge.save(net, "out_dir")

Everything is imported on first use: `import irbridge` loads neither ONNX nor any framework,
and torch or TensorFlow only when a function needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load": "api",
    "normalize": "api",
    "export": "api",
    "save": "api",
    "convert": "api",
    "verify": "api",
    "ConversionResult": "api",
    "VerificationReport": "verify",
    "bind": "binding",
    "BindResult": "binding",
    "IrbridgeError": "errors",
    "InputError": "errors",
    "UnsupportedError": "errors",
    "VerificationError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'irbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
