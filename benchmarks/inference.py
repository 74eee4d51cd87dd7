"""Inference speed of irbridge's exports against the same networks written by hand.

Hand-written: irbridge.models.torch_classics (PyTorch) and irbridge.models.keras_classics (Keras,
the same architectures, channels-last). Exported: each PyTorch classic is exported to ONNX (one
graph per batch size: torch.export fixes it) and converted by irbridge to PyTorch and to Keras.
Both sides run the same seeded input, alternately (so that a slow moment of the machine hits
both), after a warm-up; the median of `--repeats` is reported. PyTorch: eval, no_grad, 2 threads.
Keras: a `tf.function` of `model(x, training=False)`, no XLA. Each framework runs in its own
process. Targets: the export within 5% (PyTorch) and 10% (Keras) of the hand-written net.

    .venv/bin/python benchmarks/inference.py [--nets ...] [--batches 1,32] [--repeats 7] [--no-readme]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import classic_onnx, machine, write_readme_section

START, END = "<!-- infer:start -->", "<!-- infer:end -->"
TARGETS = {"torch": 1.05, "keras": 1.10}


def alternate(a, b, x, repeats: int) -> tuple[float, float]:
    """Median milliseconds of a(x) and b(x), run alternately after one warm-up call each."""
    a(x), b(x)
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return statistics.median(ta) * 1000, statistics.median(tb) * 1000


def onnx_file(d: Path, name: str, batch: int) -> Path:
    return classic_onnx(d / f"{name}_{batch}.onnx", name, batch)


def worker_torch(d: Path, nets, batches, repeats) -> list[dict]:
    import numpy as np
    import torch
    from irbridge.models.torch_classics import classic

    import irbridge

    torch.set_num_threads(2)
    rows = []
    for name in nets:
        hand = classic(name)
        for batch in batches:
            exported = irbridge.convert(onnx_file(d, name, batch), "torch", check=False).exported
            gc.collect()
            x = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 3, 224, 224), np.float32))
            with torch.no_grad():
                a, b = alternate(hand, exported, x, repeats)
            rows.append({"target": "torch", "net": name, "batch": batch, "hand": a, "export": b})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def worker_keras(d: Path, nets, batches, repeats) -> list[dict]:
    import numpy as np
    import tensorflow as tf
    from irbridge.models.keras_classics import classic

    import irbridge

    rows = []
    for name in nets:
        for batch in batches:
            hand = classic(name, batch)
            exported = irbridge.convert(onnx_file(d, name, batch), "keras", check=False).exported
            gc.collect()
            x = tf.constant(np.random.default_rng(0).standard_normal((batch, 224, 224, 3), np.float32))
            fns = [tf.function(lambda t, m=m: m(t, training=False), jit_compile=False) for m in (hand, exported)]
            a, b = alternate(*fns, x, repeats)
            rows.append({"target": "keras", "net": name, "batch": batch, "hand": a, "export": b})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    import importlib.metadata as md

    versions = {k: md.version(k) for k in ("torch", "tensorflow-cpu", "keras", "onnx") if _installed(k)}
    lines = [machine(versions), "Median of the runs shown, alternating hand-written and export; target: "
             "PyTorch within 5%, Keras within 10%.", "",
             "| target | net | batch | hand-written | irbridge export | export ÷ hand | target met |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["export"] / r["hand"]
        lines.append(f"| {r['target']} | {r['net']} | {r['batch']} | {r['hand']:.1f} ms | {r['export']:.1f} ms | "
                     f"{ratio:.2f} | {'yes' if ratio <= TARGETS[r['target']] else 'no'} |")
    return "\n".join(lines)


def _installed(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="vgg16,resnet50,mobilenet_v2")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--targets", default="torch,keras")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    nets, batches = args.nets.split(","), [int(b) for b in args.batches.split(",")]
    if args.worker:
        work = {"torch": worker_torch, "keras": worker_keras}[args.worker]
        print(json.dumps(work(Path(args.dir), nets, batches, args.repeats)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="irbridge-infer-") as tmp:
        for target in args.targets.split(","):  # one process per framework
            out = subprocess.run([sys.executable, __file__, "--worker", target, "--dir", tmp, "--nets", args.nets,
                                  "--batches", args.batches, "--repeats", str(args.repeats)],
                                 check=True, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            rows += json.loads(out.stdout.strip().splitlines()[-1])
    text = table(rows)
    print(text)
    if not args.no_readme:
        write_readme_section(START, END, text)


if __name__ == "__main__":
    main()
