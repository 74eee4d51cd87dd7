"""`--to tflite` beside onnx2tf 2.x: conversion time, and LiteRT latency of both .tflite files.

    .venv/bin/python benchmarks/tflite.py [MODEL ...] [--repeat 3] [--runs 30] [--no-readme]

Models: the nine light zoo CNNs (irbridge.models.onnx_zoo, seeded weights) and the BERT-style
and ViT-style encoders of irbridge.models.dynamic_zoo (TorchScript ONNX, free batch and
sequence / image size). Both converters get the same .onnx file.

- Conversion: each a fresh process (benchmarks/_measure.py), its frameworks imported before
  the clock starts. irbridge: `irbridge.convert(src, "tflite", out)`, checked (the default: the
  file run in LiteRT against onnxruntime at two batch sizes before it is written) and with
  check=False. onnx2tf 2.x: `onnx2tf.convert(...)` with its default backend (flatbuffer_direct,
  writing a float32 and a float16 file; no check), in its own environment (.venv-peers/onnx2tf2,
  Python 3.12, `make peers`), under an RSS cap. `--repeat` rounds, the converters alternating;
  the median is reported.
- Latency: both float32 files in this process's LiteRT interpreter (ai-edge-litert, XNNPACK,
  2 threads), the same seeded inputs (batch 1; BERT 64 tokens, ViT 32x32), 3 warm-ups, then
  `--runs` invocations alternating between the files; median. Each file's output is compared
  with onnxruntime's on those inputs (max |difference|), so a fast wrong file shows.

The machine has 2 cores and other work may run beside it: the alternation spreads that noise
over both converters alike, but single numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _measure import ROOT, machine, measure, write_readme_section  # noqa: E402

START, END = "<!-- bench-tflite:start -->", "<!-- bench-tflite:end -->"
PEER = ROOT / ".venv-peers" / "onnx2tf2" / "bin" / "python"
ENCODERS = {"bert": {"input_ids": (1, 64), "attention_mask": (1, 64), "token_type_ids": (1, 64)},
            "vit": {"pixel_values": (1, 3, 32, 32)}}
IRBRIDGE_PRE = "import irbridge, tensorflow, keras, onnxruntime, onnxscript, irbridge.keras_layers, ai_edge_litert.interpreter"
PEER_PRE = "import onnx2tf, onnx, onnxruntime, ai_edge_litert.interpreter"


def sources(tmp: Path, names: list[str]) -> list[tuple[str, Path, dict | None]]:
    """(name, .onnx path, input shapes for latency or None: the file's own) for each model."""
    import onnx
    from irbridge.models import onnx_zoo

    out = []
    for name in names:
        path = tmp / f"{name}.onnx"
        if name in ENCODERS:
            from irbridge.models import dynamic_zoo

            dynamic_zoo.export_onnx(name, path)
            out.append((name, path, ENCODERS[name]))
        else:
            onnx.save(onnx_zoo.light_model(name, seed=2), path)
            out.append((name, path, None))
    return out


def convert_irbridge(src: Path, out: Path, check: bool):
    return measure(IRBRIDGE_PRE, f"irbridge.convert('{src}', 'tflite', '{out}', check={check})")


def convert_peer(src: Path, folder: Path, cap: int):
    if not PEER.exists():
        return "onnx2tf 2.x: not installed (make peers)"
    got = measure(PEER_PRE, f"onnx2tf.convert(input_onnx_file_path='{src}', output_folder_path='{folder}', "
                            "non_verbose=True)", python=PEER, cwd=folder.parent, cap_bytes=cap)
    if isinstance(got, tuple) and not (folder / f"{src.stem}_float32.tflite").exists():
        return "failed: no _float32.tflite written"
    return got


def latencies(files: dict[str, Path], src: Path, shapes: dict | None, runs: int) -> dict:
    """{label: (median ms, max |diff| vs onnxruntime)} or {label: why it could not run}."""
    import irbridge
    from irbridge.exporters.tflite.runner import (
        _dequantize,
        _quantize,
        by_name,
        interpreter,
        io_details,
    )
    from irbridge.exporters.tflite.tflite_file import read
    from irbridge.verify import check_feeds, runner_for

    model = irbridge.load(src)
    feeds = check_feeds(model, shapes or {v.name: tuple(d if isinstance(d, int) else 1 for d in v.shape)
                                         for v in model.graph.inputs})[0]
    want = runner_for(model).run(feeds)
    live, out = {}, {}
    for label, path in files.items():
        try:
            flat = read(path, reference=model)
            meta = flat.irbridge_tflite
            it = interpreter(flat, threads=2, litert_only=True)
            ins, outs = io_details(it)
            ins, outs = by_name(ins, [n for n, _ in meta["inputs"]]), by_name(outs, [n for n, _ in meta["outputs"]])
            xs = {n: _quantize(np.ascontiguousarray(feeds[n].transpose(p)), ins[n]) for n, p in meta["inputs"]}
            for n, x in xs.items():
                it.resize_tensor_input(ins[n]["index"], list(x.shape), strict=False)
            it.allocate_tensors()
            for n, x in xs.items():
                it.set_tensor(ins[n]["index"], x)
            for _ in range(3):
                it.invoke()
            got = {n: _dequantize(it.get_tensor(outs[n]["index"]), outs[n]).transpose(np.argsort(p))
                   for n, p in meta["outputs"]}
            err = max(float(np.max(np.abs(got[n].astype(np.float64) - want[n]))) for n in got)
            live[label], out[label] = (it, []), err
        except Exception as e:  # noqa: BLE001 - a file LiteRT cannot run here: say why
            out[label] = f"cannot run: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    for _ in range(runs):  # alternating: the machine's noise falls on both files alike
        for it, times in live.values():
            t = time.perf_counter()
            it.invoke()
            times.append(time.perf_counter() - t)
    return {label: (float(np.median(live[label][1])) * 1e3, out[label]) if label in live else out[label]
            for label in files}


def run(names: list[str], repeat: int, runs: int, cap: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="irbridge-bench-tflite-") as tmp:
        tmp = Path(tmp)
        for name, src, shapes in sources(tmp, names):
            conv = {"checked": [], "unchecked": [], "onnx2tf": []}
            for _ in range(repeat):  # alternating
                conv["checked"].append(convert_irbridge(src, tmp / f"{name}.tflite", True))
                conv["unchecked"].append(convert_irbridge(src, tmp / f"{name}_u.tflite", False))
                conv["onnx2tf"].append(convert_peer(src, tmp / f"{name}_o2tf", cap))
            row = {"model": name, "repeat": repeat, **{k: _median(v) for k, v in conv.items()}}
            files = {"irbridge": tmp / f"{name}.tflite"}
            peer_file = tmp / f"{name}_o2tf" / f"{name}_float32.tflite"
            if peer_file.exists():
                files["onnx2tf"] = peer_file
            if files["irbridge"].exists():
                row["latency"] = latencies(files, src, shapes, runs)
            row["mb"] = {k: f.stat().st_size / 2**20 for k, f in files.items() if f.exists()}
            rows.append(row)
            print(json.dumps(row, default=str), file=sys.stderr, flush=True)
    return rows


def _median(results: list):
    """The median time of the runs that worked (seconds), or the first failure's words."""
    ok = [r[0] for r in results if isinstance(r, tuple)]
    return float(np.median(ok)) if ok else results[0]


def _s(x) -> str:
    return f"{x:.1f} s" if isinstance(x, float) else str(x).replace("|", "/")[:90]


def _ms(lat: dict | None, label: str) -> str:
    x = (lat or {}).get(label)
    if x is None:
        return "—"
    if isinstance(x, str):
        return x.replace("|", "/")[:90]
    return f"{x[0]:.2f} ms ({x[1]:.1g})"


def table(rows: list[dict], runs: int) -> str:
    import subprocess

    import ai_edge_litert
    import tensorflow as tf

    peer = "not installed"
    if PEER.exists():
        peer = subprocess.run([str(PEER), "-c", "import importlib.metadata as m; print(m.version('onnx2tf'))"],
                              capture_output=True, text=True).stdout.strip()
    lines = [machine({"tensorflow": tf.__version__, "ai-edge-litert": getattr(ai_edge_litert, "__version__", "?"),
                      "onnx2tf": f"{peer} (Python 3.12, default backend flatbuffer_direct)"}),
             "Conversion: the median of *n* fresh processes per converter, alternating; irbridge *checked* is "
             "the default (the file run in LiteRT against onnxruntime at two batch sizes before it is written), "
             "onnx2tf runs no check. Latency: the float32 files in ai-edge-litert (XNNPACK, 2 threads), the same "
             f"seeded batch-1 inputs, median of {runs} invocations alternating between the files; in brackets the "
             "file's max |difference| from onnxruntime on those inputs. 2 cores shared with other jobs: "
             "timings are noisy.", "",
             "| model | n | irbridge convert (checked) | irbridge (--no-check) | onnx2tf 2.x convert | "
             "irbridge LiteRT | onnx2tf LiteRT | irbridge ÷ onnx2tf latency |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lat = r.get("latency") or {}
        a, b = lat.get("irbridge"), lat.get("onnx2tf")
        ratio = f"{a[0] / b[0]:.2f}x" if isinstance(a, tuple) and isinstance(b, tuple) else "—"
        lines.append(f"| {r['model']} | {r.get('repeat', 1)} | {_s(r['checked'])} | {_s(r['unchecked'])} | {_s(r['onnx2tf'])} | "
                     f"{_ms(lat, 'irbridge')} | {_ms(lat, 'onnx2tf')} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from irbridge.models import onnx_zoo

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=[*onnx_zoo.NAMES, *ENCODERS])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--cap-gb", type=float, default=8)
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args(argv)
    rows = run(args.models, args.repeat, args.runs, int(args.cap_gb * 2**30))
    text = table(rows, args.runs)
    print(text)
    if not args.no_readme:
        write_readme_section(START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
