"""LiteRT latency of irbridge's .tflite files (run by hand; not part of the tests).

    .venv/bin/python benchmarks/tflite.py [MODEL ...] [--quantize float16,int8] [--runs 30]

For each light zoo model (default: all nine): convert with irbridge (float32, and each
--quantize mode; int8 calibrated on 16 seeded random samples), then time the LiteRT
interpreter (ai-edge-litert, XNNPACK, 2 threads) on one seeded 1x224x224x3 input: median
and p90 of --runs invocations after 3 warm-ups. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def latency(flat: bytes, x: np.ndarray, runs: int, threads: int = 2) -> tuple[float, float]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=bytes(flat), num_threads=threads)
    d = it.get_input_details()[0]
    if list(d["shape"]) != list(x.shape):
        it.resize_tensor_input(d["index"], list(x.shape))
    it.allocate_tensors()
    scale, zero = d["quantization"]
    feed = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8) if d["dtype"] == np.int8 else x
    it.set_tensor(d["index"], feed)
    for _ in range(3):
        it.invoke()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3, float(np.percentile(times, 90)) * 1e3


def main(argv=None) -> int:
    from irbridge.models import onnx_zoo

    import irbridge

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=onnx_zoo.NAMES)
    p.add_argument("--quantize", default="float16,int8")
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args(argv)
    modes = [None] + [q for q in args.quantize.split(",") if q]
    rows = []
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            model = onnx_zoo.light_model(name, seed=2)
            inp = model.graph.input[0].name
            for q in modes:
                kw = {}
                if q == "int8":
                    kw["calibration"] = {inp: np.random.default_rng(1).standard_normal((16, 3, 224, 224)).astype(np.float32)}
                t = time.perf_counter()
                res = irbridge.convert(model, "tflite", Path(tmp) / f"{name}.tflite", quantize=q, **kw)
                seconds = time.perf_counter() - t
                med, p90 = latency(res.exported, x, args.runs)
                acc = res.accuracy["outputs"][0] if res.accuracy else None
                rows.append((name, q or "float32", seconds, len(res.exported) / 2**20, med, p90,
                             "" if acc is None else f"{acc['cosine']:.4f}"))
                print(rows[-1], file=sys.stderr)
    print("| model | type | convert+check s | MB | LiteRT median ms | p90 ms | cosine vs ORT |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, q, s, mb, med, p90, cos in rows:
        print(f"| {name} | {q} | {s:.1f} | {mb:.1f} | {med:.2f} | {p90:.2f} | {cos} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
