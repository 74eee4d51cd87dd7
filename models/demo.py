"""`make demo`: write the zoo's ResNet-style network as an ONNX file to convert.

    python -m irbridge.models.demo OUT_DIR   ->  OUT_DIR/resnet_small.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out_dir: str) -> Path:
    import torch

    import irbridge
    from irbridge.exporters.onnx import save_onnx

    from .torch_zoo import ZOO

    build, shape = ZOO["resnet_small"]
    net = build()
    model = irbridge.load(net, inputs=(torch.randn(*shape, generator=torch.Generator().manual_seed(0)),))
    path = save_onnx(model, Path(out_dir) / "resnet_small.onnx")
    print(f"wrote {path}: the zoo's ResNet-style network, exported from PyTorch", file=sys.stderr)
    return path


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/demo")
