"""Peak memory and time of converting a 244 MB caffemodel (AlexNet, 61M parameters) to ONNX.

The caffemodel is written with seeded random weights for ../shared/data/caffe's AlexNet
prototxt. Each run is a fresh process; its peak RSS (VmHWM: unlike ru_maxrss, not inherited
from the parent) is compared with the weights' size and
with the process's own baseline (Python + irbridge + onnx + onnxruntime imported, no model).
Run by hand:

    .venv/bin/python benchmarks/caffe_memory.py

Target (issue 6): no more than one extra copy of the weights, i.e. peak RSS - baseline
<= 2x the weights (the mapped file counts as one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

PEAK = """
import sys, time
t = time.perf_counter()
code = 0
try:
    {body}
except SystemExit as e:
    code = e.code
hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024  # peak RSS of this process
print(hwm, time.perf_counter() - t, code, file=sys.stderr)
"""
BASELINE = "import irbridge.cli, irbridge.importers.caffe, irbridge.passes, onnx, onnx_ir, onnxruntime"
CONVERT = "import irbridge.cli; irbridge.cli.main({argv!r})"


def measure(body: str) -> tuple[int, float]:
    proc = subprocess.run([sys.executable, "-c", PEAK.format(body=body)], capture_output=True, text=True)
    rss, seconds, code = proc.stderr.strip().splitlines()[-1].split()
    if code not in ("0", "None"):
        raise SystemExit(f"run failed ({code}):\n{proc.stderr}")
    return int(rss), float(seconds)


def main() -> None:
    from irbridge.models.caffe_zoo import SHARED, write_caffemodel

    prototxt = SHARED / "bvlc_alexnet_deploy.prototxt"
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "alexnet.caffemodel"
        write_caffemodel(prototxt, weights)
        size = weights.stat().st_size
        base, _ = measure(BASELINE)
        rows = []
        for label, extra in (("convert --to onnx --no-check", ["--no-check"]), ("convert --to onnx (checked)", [])):
            argv = ["convert", str(prototxt), str(weights), "--to", "onnx", "-o", str(Path(tmp) / "a.onnx"), *extra]
            rss, seconds = measure(CONVERT.format(argv=argv))
            rows.append({"run": label, "seconds": round(seconds, 2), "peak_rss_mb": rss >> 20,
                         "above_baseline_in_weights": round((rss - base) / size, 2)})
    print(json.dumps({"weights_mb": size >> 20, "baseline_mb": base >> 20, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
