"""`make bench`: conversion wall time and peak memory on this machine, beside the floor (loading
and saving the same weights in the target framework) and the peers (onnx2torch, onnx2tf), written
as a table into README.md.

Networks: VGG-16 (138M parameters), ResNet-50, MobileNetV2 (depthwise), hand-written in PyTorch
(irbridge.models.torch_classics, seeded weights) and taken from keras.applications (weights=None);
Caffe: AlexNet from ../shared/data/caffe with a seeded caffemodel. Every measurement is a fresh
process (benchmarks/_measure.py).

ONNX sources: the dynamo export (opset 18) that `irbridge convert module --to onnx` writes, and
the TorchScript export at opset 13 (`torch.onnx.export(dynamo=False)`), which onnx2torch reads
(it has no converter for opset 18's ReduceMean). irbridge and the peer get the same file.

Peers run in their own virtual environments (`make peers`: .venv-peers/onnx2torch with torch
2.14.1 + torchvision 0.29.1, .venv-peers/onnx2tf with onnx2tf's own pins), under a memory cap;
their deliverable is saved as irbridge's is (onnx2torch: `torch.save` of the module; onnx2tf: its
default SavedModel + .tflite files, plus a .keras file for the Keras rows). onnx2tf fetches a
calibration sample at run time; offline, a random array saved under that name stands in.

    .venv/bin/python benchmarks/conversions.py [--nets vgg16,resnet50,mobilenet_v2] [--no-peers]
        [--cap-gb 16] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _measure import ROOT, fmt, machine, measure, write_readme_section

import irbridge
from irbridge.exporters.onnx import weights_bytes

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
KERAS_APPS = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenet_v2": "MobileNetV2"}
PEERS = {"onnx2torch": ROOT / ".venv-peers" / "onnx2torch" / "bin" / "python",
         "onnx2tf": ROOT / ".venv-peers" / "onnx2tf" / "bin" / "python"}
CALIBRATION = "calibration_image_sample_data_20x128x128x3_float32.npy"

# frameworks are imported before the clock starts, for irbridge as for the floor and the peers
PRE = {"torch": "import irbridge, torch, onnxruntime, onnxscript",
       "keras": "import irbridge, tensorflow, keras, onnxruntime, onnxscript, irbridge.keras_layers",
       "tf": "import irbridge, tensorflow, keras, onnxruntime, onnxscript, irbridge.keras_layers"}
SUFFIX = {"torch": "_t", "keras": ".keras", "tf": "_tf"}
FLOORS = {
    "torch": lambda out: ("import safetensors.torch as st",
                          f"st.save_file(st.load_file('{out}_t/weights.safetensors'), '{out}_floor.safetensors')"),
    "keras": lambda out: ("import keras, irbridge.keras_layers",
                          f"keras.saving.load_model('{out}.keras').save('{out}_floor.keras')"),
    "tf": lambda out: ("import tensorflow as tf", f"tf.saved_model.save(tf.saved_model.load('{out}_tf'), '{out}_floor_tf')"),
}


def prepare(d: Path, net: str) -> dict[str, Path]:
    """The net as ONNX files (opset 18 by irbridge, opset 13 by TorchScript) and a .keras file."""
    files = {"onnx": d / f"{net}.onnx", "onnx13": d / f"{net}_op13.onnx", "keras": d / f"{net}.keras"}
    make = {
        "onnx": f"from _measure import classic_onnx; from pathlib import Path; classic_onnx(Path('{files['onnx']}'), '{net}')",
        "onnx13": (f"import torch, warnings; warnings.simplefilter('ignore'); "
                   f"from irbridge.models.torch_classics import classic; "
                   f"torch.onnx.export(classic('{net}'), (torch.randn(1, 3, 224, 224),), '{files['onnx13']}', "
                   f"dynamo=False, opset_version=13, input_names=['x'])"),
        "keras": (f"import keras; keras.utils.set_random_seed(0); "
                  f"keras.applications.{KERAS_APPS[net]}(weights=None).save('{files['keras']}')"),
    }
    for key, code in make.items():
        if not files[key].exists():
            subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent, capture_output=True)
    return files


def peer(name: str, target: str, src: Path, out: Path, cap: int):
    """The peer's own conversion of `src`, in its environment; or why it could not run."""
    python = PEERS[name]
    if not python.exists():
        return f"{name}: not installed (make peers)"
    if name == "onnx2torch":
        got = measure("import onnx2torch, torch, onnx", f"torch.save(onnx2torch.convert('{src}'), '{out}_o2t.pt')",
                      python=python, cap_bytes=cap)
    else:
        work = out.parent / "onnx2tf"
        work.mkdir(exist_ok=True)
        if not (work / CALIBRATION).exists():
            np.save(work / CALIBRATION, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
        keras_v3 = ", output_keras_v3=True" if target == "keras" else ""
        got = measure("import onnx2tf, tensorflow",
                      f"onnx2tf.convert(input_onnx_file_path='{src}', output_folder_path='{out}_o2tf_{target}', "
                      f"non_verbose=True{keras_v3})", python=python, cwd=work, cap_bytes=cap)
    if isinstance(got, tuple):
        return got
    missing = re.search(r"operation_type='(\w+)', version=(\d+)", got)  # onnx2torch's own words, shortened
    if missing:
        got = f"failed: no converter for {missing.group(1)} at opset {missing.group(2)}"
    return f"{name}: {got}"


def rows_for(d: Path, net: str, peers: bool, cap: int) -> list[dict]:
    f = prepare(d, net)
    out = d / "out"
    weights = weights_bytes(irbridge.load(f["onnx"]))  # the weights stay mapped in the file: not read
    rows = []

    def row(what, setup, body, floor=None, peer_result=None):
        rows.append({"net": net, "weights": weights, "conversion": what, "result": measure(setup, body),
                     "unchecked": measure(setup, body[:-1] + ", check=False)"),
                     "floor": measure(*floor) if floor else None, "peer": peer_result})

    for target in ("torch", "keras", "tf"):
        name = "onnx2torch" if target == "torch" else "onnx2tf"
        row(f"ONNX (opset 18) -> {target}", PRE[target],
            f"irbridge.convert('{f['onnx']}', '{target}', '{out}{SUFFIX[target]}')", FLOORS[target](out),
            peer(name, target, f["onnx"], out, cap) if peers else None)
    row("ONNX (opset 13) -> torch", PRE["torch"], f"irbridge.convert('{f['onnx13']}', 'torch', '{out}13_t')",
        FLOORS["torch"](out), peer("onnx2torch", "torch", f["onnx13"], out, cap) if peers else None)
    row("PyTorch -> ONNX", f"{PRE['torch']}; from irbridge.models.torch_classics import classic; m = classic('{net}')",
        f"irbridge.convert(m, 'onnx', '{out}.onnx', inputs={{'x': (1, 3, 224, 224)}})",
        ("import onnx", f"onnx.save(onnx.load('{f['onnx']}'), '{out}_floor.onnx')"))
    row("Keras -> ONNX", PRE["keras"] + ", tf2onnx", f"irbridge.convert('{f['keras']}', 'onnx', '{out}_k.onnx')",
        ("import keras", f"keras.saving.load_model('{f['keras']}').save('{out}_floor.keras')"))
    return rows


def caffe_rows(d: Path) -> list[dict]:
    setup = ("from irbridge.models.caffe_zoo import SHARED, write_caffemodel; import irbridge, onnxruntime, onnxscript; "
             f"p = SHARED / 'bvlc_alexnet_deploy.prototxt'; w = '{d}/alexnet.caffemodel'; "
             "import os; os.path.exists(w) or write_caffemodel(p, w)")
    body = f"irbridge.convert(p, 'onnx', '{d}/alexnet.onnx', weights=w)"
    result, unchecked = measure(setup, body), measure(setup, body[:-1] + ", check=False)")
    weights = (d / "alexnet.caffemodel").stat().st_size  # the blobs, and a few KB of layer definitions
    return [{"net": "alexnet (caffe)", "weights": weights, "conversion": "Caffe -> ONNX", "result": result,
             "unchecked": unchecked, "floor": None, "peer": None}]


def ratio(a, b) -> str:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and b[0] > 0:
        return f"{a[0] / b[0]:.2f}x"
    return "—"


def memory(r) -> str:
    """Peak over the weights' size, and over the floor's own peak (the framework holding them)."""
    got, floor = r["result"], r["floor"]
    if not isinstance(got, (tuple, list)):
        return "—"
    over_floor = f" / {got[1] / floor[1]:.1f}x" if isinstance(floor, (tuple, list)) and floor[1] > 0 else ""
    return f"{got[1] / r['weights']:.1f}x{over_floor}"


def table(rows: list[dict]) -> str:
    import onnx
    import onnxruntime

    versions = {"numpy": np.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    for mod in ("torch", "tensorflow", "keras"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    lines = [machine(versions),
             "Cells: wall time and peak memory above the process's baseline (the frameworks imported before "
             "the clock starts). *checked*: the default (the export run against onnxruntime before anything is "
             "written); *unchecked*: `--no-check`. Floor: loading and saving the same weights in the target "
             "framework. Peers in their own environments, capped at the memory shown below; the ratios divide "
             "irbridge's checked time. Memory: the checked peak over the weights' size / over the floor's "
             "peak.", "",
             "| net | conversion | irbridge checked | unchecked | memory | floor (load + save) | ÷ floor | "
             "peer | ÷ peer |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['conversion']} | {fmt(r['result'])} | {fmt(r['unchecked'])} | {memory(r)} | "
                     f"{fmt(r['floor'])} | {ratio(r['result'], r['floor'])} | {fmt(r['peer'])} | "
                     f"{ratio(r['result'], r['peer'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="vgg16,resnet50,mobilenet_v2")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--cap-gb", type=float, default=16)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    cap = int(args.cap_gb * 2**30)
    with tempfile.TemporaryDirectory(prefix="irbridge-bench-") as tmp:
        rows = []
        for net in args.nets.split(","):
            rows += rows_for(Path(tmp), net, not args.no_peers, cap)
            print(json.dumps(rows[-6:], default=str), file=sys.stderr)
        rows += caffe_rows(Path(tmp))
    text = table(rows) + f"\n\nPeer memory cap: {args.cap_gb:.0f} GB."
    print(text)
    if not args.no_readme:
        write_readme_section(START, END, text)


if __name__ == "__main__":
    main()
