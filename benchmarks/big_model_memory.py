"""Peak memory of converting a model with more than 2 GB of weights ONNX -> PyTorch -> ONNX.

The model (written here, seeded): four 12288x12288 MatMul+Relu layers, 2.25 GiB of float32
weights in ONNX external data. Each step runs in a fresh process; peak RSS is VmHWM (the
process's own high-water mark, Python and the frameworks included). Run by hand:

    .venv/bin/python benchmarks/big_model_memory.py [--dir /tmp/irbridge-big]

Target (issue 8): peak under 1.5x the weights' size, conversions checked against onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MAKE = """
import numpy as np, onnx_ir as ir
n, d = 4, 12288
rng = np.random.default_rng(0)
f32 = ir.TensorType(ir.DataType.FLOAT)
x = cur = ir.Value(name="x", shape=ir.Shape([1, d]), type=f32)
nodes, inits = [], []
for i in range(n):
    w = rng.standard_normal((d, d), dtype=np.float32) * np.float32(1 / np.sqrt(d))
    inits.append(ir.Value(name=f"w{{i}}", shape=ir.Shape([d, d]), type=f32, const_value=ir.Tensor(w, name=f"w{{i}}")))
    mm = ir.Node("", "MatMul", [cur, inits[-1]], name=f"fc{{i}}")
    relu = ir.Node("", "Relu", [mm.outputs[0]], name=f"relu{{i}}")
    mm.outputs[0].name, relu.outputs[0].name = f"h{{i}}", f"r{{i}}"
    nodes += [mm, relu]
    cur = relu.outputs[0]
cur.shape, cur.type = ir.Shape([1, d]), f32
graph = ir.Graph([x], [cur], nodes=nodes, initializers=inits, opset_imports={{"": 18}}, name="big")
ir.save(ir.Model(graph, ir_version=10), "{dir}/big.onnx", external_data="big.onnx.data")
"""
PEAK = """
import sys, time
t = time.perf_counter()
{body}
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
print("RESULT", hwm, time.perf_counter() - t)
"""
STEPS = {
    "ONNX -> PyTorch (checked)": "import irbridge; r = irbridge.convert('{dir}/big.onnx', 'torch', '{dir}/torch'); "
                                 "assert r.report.ok",
    "PyTorch -> ONNX (checked)": "import irbridge; from irbridge.exporters.torch import load_saved; "
                                 "r = irbridge.convert(load_saved('{dir}/torch'), 'onnx', '{dir}/back.onnx', "
                                 "inputs={{'x': (1, 12288)}}); assert r.report.ok",
}


def run(code: str) -> tuple[int, float]:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"failed:\n{proc.stderr[-3000:]}")
    _, rss, seconds = line.split()
    return int(rss), float(seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/irbridge-big")
    d = Path(ap.parse_args().dir)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "big.onnx").exists():
        run(PEAK.format(body=MAKE.format(dir=d)))
    weights = (d / "big.onnx.data").stat().st_size
    rows = []
    for label, body in STEPS.items():
        rss, seconds = run(PEAK.format(body=body.format(dir=d)))
        rows.append({"step": label, "seconds": round(seconds, 1), "peak_rss_gib": round(rss / 2**30, 2),
                     "peak_over_weights": round(rss / weights, 2)})
    print(json.dumps({"weights_gib": round(weights / 2**30, 2), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
