"""irbridge: move trained networks between frameworks through ONNX, and prove the result matches.

    import irbridge
    m = irbridge.load("model.onnx")          # or a torch.nn.Module with inputs=...
    m = irbridge.normalize(m)
    net = irbridge.export(m, "torch")         # verified against onnxruntime
    irbridge.save(net, "out_dir")

Frameworks (torch, TensorFlow) are imported only when a function needs them.
"""

from .api import ConversionResult, convert, export, load, normalize, save, verify
from .errors import InputError, IrbridgeError, UnsupportedError, VerificationError
from .verify import VerificationReport

__version__ = "0.1.0"

__all__ = [
    "ConversionResult",
    "InputError",
    "IrbridgeError",
    "UnsupportedError",
    "VerificationError",
    "VerificationReport",
    "convert",
    "export",
    "load",
    "normalize",
    "save",
    "verify",
]
