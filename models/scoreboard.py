"""The models `make scoreboard` sweeps: every network the repository builds, written as files.

    python -m irbridge.models.scoreboard build/scoreboard-models

- `onnx_zoo/`: the nine light ONNX zoo networks with seeded random weights (`onnx_zoo`);
- `dynamic/`: the small BERT, ViT and wav2vec2-like front end with free dims, exported the way
  published files are made, in float32 and float16 (`dynamic_zoo.export_onnx`);
- `keras/`: Keras MobileNetV2 (224x224) and ResNet-50 (64x64) as `.keras` files (`keras_classics`).

Files already present are kept (delete the folder to rebuild); each builder's framework is
imported only when it is needed, and one that is not installed is skipped with a message.
"""

from __future__ import annotations

import sys
from pathlib import Path

KERAS = {"mobilenet_v2": 224, "resnet50": 64}


def build(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    written = []

    def want(path: Path) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(path)
        return not path.exists()

    import onnx

    from . import onnx_zoo

    for name in onnx_zoo.NAMES:
        if want(p := out / "onnx_zoo" / f"{name}.onnx"):
            onnx.save(onnx_zoo.light_model(name, seed=0), p)
    try:
        from . import dynamic_zoo
    except ImportError as e:
        print(f"skipping the dynamic zoo: {e}", file=sys.stderr)
    else:
        for name in dynamic_zoo.ZOO:
            for half in (False, True):
                if want(p := out / "dynamic" / f"{name}{'_fp16' if half else ''}.onnx"):
                    dynamic_zoo.export_onnx(name, p, half=half)
    try:
        from . import keras_classics
    except ImportError as e:
        print(f"skipping the Keras classics: {e}", file=sys.stderr)
    else:
        for name, size in KERAS.items():
            if want(p := out / "keras" / f"{name}_{size}.keras"):
                keras_classics.classic(name, size=size).save(p)
    return written


if __name__ == "__main__":
    paths = build(sys.argv[1] if len(sys.argv) > 1 else "build/scoreboard-models")
    print(f"{len(paths)} models in {Path(paths[0]).parents[1] if paths else '-'}")
