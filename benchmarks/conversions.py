"""`make bench`: conversion wall time and peak memory on this machine, beside the floor (loading
and saving the same weights in the target framework), written as a table into README.md.

Networks: VGG-16 (138M parameters), ResNet-50, MobileNetV2 (depthwise), hand-written in PyTorch
(irbridge.models.torch_classics, seeded weights) and taken from keras.applications (weights=None);
Caffe: AlexNet from ../shared/data/caffe with a seeded caffemodel. Every measurement is a fresh
process (time inside it, peak RSS = its VmHWM, baseline = the same process before the work).

    .venv/bin/python benchmarks/conversions.py [--nets vgg16,resnet50,mobilenet_v2] [--no-readme]

Peers (onnx2torch, onnx2tf) are not measured yet: their column says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

PROBE = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
def _rss(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024
{setup}
base = _rss("VmRSS")
t = time.perf_counter()
{body}
print("RESULT", time.perf_counter() - t, _rss("VmHWM") - base, flush=True)
"""

KERAS_APPS = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2"}


def measure(setup: str, body: str) -> tuple[float, int] | str:
    code = PROBE.format(setup=setup, body=body)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    if proc.returncode or line is None:
        if proc.returncode in (-9, 137):
            return "failed: killed (out of memory)"
        said = [ln for ln in proc.stderr.strip().splitlines() if ln and not re.match(r"^[IWE]\d{4} |WARNING: All", ln)]
        return f"failed: {(said or ['?'])[-1][:80]}"
    _, seconds, peak = line.split()
    return float(seconds), int(peak)


def prepare(d: Path, net: str) -> dict[str, Path]:
    """The net as an ONNX file, a .keras file and PyTorch weights, written once."""
    files = {"onnx": d / f"{net}.onnx", "keras": d / f"{net}.keras"}
    if not files["onnx"].exists():
        code = (f"import irbridge; from irbridge.models.torch_classics import CLASSICS; "
                f"irbridge.convert(CLASSICS['{net}'](), 'onnx', '{files['onnx']}', inputs={{'x': (1, 3, 224, 224)}})")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
    if not files["keras"].exists():
        code = (f"import keras; keras.utils.set_random_seed(0); "
                f"keras.applications.{KERAS_APPS[net]}(weights=None).save('{files['keras']}')")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return files


def rows_for(d: Path, net: str) -> list[dict]:
    f = prepare(d, net)
    out = d / "out"
    # frameworks are imported before the clock starts, for irbridge as for the floor
    pre = {"torch": "import irbridge, torch, onnxruntime, onnxscript",
           "keras": "import irbridge, tensorflow, keras, onnxruntime, onnxscript, irbridge.keras_layers",
           "tf": "import irbridge, tensorflow, keras, onnxruntime, onnxscript, irbridge.keras_layers"}
    rows = []

    def row(what, setup, body, floor_setup=None, floor_body=None):
        got = measure(setup, body)
        floor = measure(floor_setup, floor_body) if floor_body else None
        rows.append({"net": net, "conversion": what, "result": got, "floor": floor})

    for target, suffix in (("torch", "_t"), ("keras", ".keras"), ("tf", "_tf")):
        row(f"ONNX -> {target}", pre[target], f"irbridge.convert('{f['onnx']}', '{target}', '{out}{suffix}')",
            *FLOORS[target](out, suffix))
    row("PyTorch -> ONNX", f"{pre['torch']}; from irbridge.models.torch_classics import CLASSICS; m = CLASSICS['{net}']()",
        f"irbridge.convert(m, 'onnx', '{out}.onnx', inputs={{'x': (1, 3, 224, 224)}})",
        "import onnx", f"onnx.save(onnx.load('{f['onnx']}'), '{out}_floor.onnx')")
    row("Keras -> ONNX", pre["keras"] + ", tf2onnx", f"irbridge.convert('{f['keras']}', 'onnx', '{out}_k.onnx')",
        "import keras", f"keras.saving.load_model('{f['keras']}').save('{out}_floor.keras')")
    return rows


FLOORS = {
    "torch": lambda out, s: ("import safetensors.torch as st",
                             f"st.save_file(st.load_file('{out}{s}/weights.safetensors'), '{out}_floor.safetensors')"),
    "keras": lambda out, s: ("import keras, irbridge.keras_layers",
                             f"keras.saving.load_model('{out}{s}').save('{out}_floor.keras')"),
    "tf": lambda out, s: ("import tensorflow as tf", f"tf.saved_model.save(tf.saved_model.load('{out}{s}'), '{out}_floor_tf')"),
}


def caffe_rows(d: Path) -> list[dict]:
    setup = ("from irbridge.models.caffe_zoo import SHARED, write_caffemodel; import irbridge, onnxruntime, onnxscript; "
             f"p = SHARED / 'bvlc_alexnet_deploy.prototxt'; w = '{d}/alexnet.caffemodel'; "
             "import os; os.path.exists(w) or write_caffemodel(p, w)")
    got = measure(setup, f"irbridge.convert(p, 'onnx', '{d}/alexnet.onnx', weights=w)")
    return [{"net": "alexnet (caffe)", "conversion": "Caffe -> ONNX", "result": got, "floor": None}]


def fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    seconds, peak = x
    return f"{seconds:.1f} s, {peak / 2**20:,.0f} MB"


def table(rows: list[dict]) -> str:
    import numpy
    import onnx
    import onnxruntime

    versions = {"python": platform.python_version(), "numpy": numpy.__version__, "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__}
    for mod in ("torch", "tensorflow", "keras"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) // 2**20
    lines = [f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores of {cpu}, {mem} GiB; "
             + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
             "Each cell: wall time and peak memory above the process's baseline (checked conversions; the "
             "frameworks imported before the clock starts). Floor: loading and saving the same weights in the "
             "target framework. Peers: not measured yet.", "",
             "| net | conversion | irbridge | floor (load + save) | ratio | peer |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "—"
        if isinstance(r["result"], tuple) and isinstance(r["floor"], tuple) and r["floor"][0] > 0:
            ratio = f"{r['result'][0] / r['floor'][0]:.1f}x"
        lines.append(f"| {r['net']} | {r['conversion']} | {fmt(r['result'])} | {fmt(r['floor'])} | {ratio} | "
                     "not measured yet |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="vgg16,resnet50,mobilenet_v2")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="irbridge-bench-") as tmp:
        rows = []
        for net in args.nets.split(","):
            rows += rows_for(Path(tmp), net)
            print(json.dumps(rows[-5:], default=str), file=sys.stderr)
        rows += caffe_rows(Path(tmp))
    text = table(rows)
    print(text)
    if not args.no_readme:
        readme = README.read_text()
        if START in readme:
            readme = re.sub(f"{re.escape(START)}.*?{re.escape(END)}", f"{START}\n{text}\n{END}", readme, flags=re.S)
            README.write_text(readme)


if __name__ == "__main__":
    main()
