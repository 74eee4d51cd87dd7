"""Where a conversion's time goes: cProfile around one `irbridge.convert`, by hand.

    .venv/bin/python benchmarks/profile_conversion.py --net vgg16 --source onnx --to keras [--no-check]
    .venv/bin/python benchmarks/profile_conversion.py --net resnet50 --source keras --to onnx

The source is built as `make bench` builds it (irbridge.models.torch_classics for ONNX and
PyTorch sources, keras.applications for Keras), in a temporary folder; the frameworks are
imported before the profile starts. Prints irbridge's stages (from the progress reporter's
timings in the result) and the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

from _measure import classic_onnx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

KERAS_APPS = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2"}


def source(d: Path, net: str, kind: str):
    from irbridge.models.torch_classics import classic

    if kind == "torch":
        return classic(net), {"x": (1, 3, 224, 224)}
    if kind == "onnx":
        return classic_onnx(d / f"{net}.onnx", net), None
    import keras

    keras.utils.set_random_seed(0)
    path = d / f"{net}.keras"
    getattr(keras.applications, KERAS_APPS[net])(weights=None).save(path)
    return path, None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="vgg16", choices=list(KERAS_APPS))
    ap.add_argument("--source", default="onnx", choices=["onnx", "torch", "keras"])
    ap.add_argument("--to", default="torch", choices=["onnx", "torch", "keras", "tf"])
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()

    import onnxruntime  # noqa: F401  (frameworks before the clock, as in make bench)
    import onnxscript  # noqa: F401
    import torch  # noqa: F401

    import irbridge

    if "keras" in (args.source, args.to) or args.to == "tf":
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        import tf2onnx  # noqa: F401

        import irbridge.keras_layers  # noqa: F401
    with tempfile.TemporaryDirectory(prefix="irbridge-profile-") as tmp:
        src, inputs = source(Path(tmp), args.net, args.source)
        out = Path(tmp) / {"onnx": "out.onnx", "keras": "out.keras"}.get(args.to, f"out_{args.to}")
        profile = cProfile.Profile()
        t = time.perf_counter()
        profile.enable()
        result = irbridge.convert(src, args.to, out, inputs=inputs, check=not args.no_check)
        profile.disable()
        total = time.perf_counter() - t
    print(f"{args.net}: {args.source} -> {args.to}, {total:.2f} s (under the profiler)")
    print("stages:", ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items()))
    pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
