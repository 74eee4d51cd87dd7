"""Full-size transformers: a BERT-base-size encoder and a ViT-B/16-size model (transformers configs,
seeded random weights, nothing downloaded), exported the way published files are made (TorchScript,
opset 17, dynamic batch and sequence axes), converted by irbridge to PyTorch and to Keras.

Speed (targets: the PyTorch export within 1.1x of the source at batch 1 and 8, issue 18; the Keras
export within 1.3x of the source PyTorch model's eager time at batch 8, issue 16):
- PyTorch: the source transformers module and irbridge's model (loaded from model.py as a user
  would) run alternately in one process, eval + no_grad, 2 threads, median of `--repeats`.
- Keras: irbridge's .keras model, reloaded, as a `tf.function` of `model(x, training=False)` (no XLA),
  in its own process; compared with the source's median from the PyTorch process.

Conversion (targets: within 3x of the load + save floor, peak under 2x the weights above the
frameworks' baseline, issue 16): `irbridge.convert(src, target, out)` with its check, each in a
fresh process (benchmarks/_measure.py); the floor loads and saves the same weights in the target.

    .venv/bin/python benchmarks/transformers_speed.py [--models bert,vit] [--repeats 7] [--no-readme]
                                                      [--only conversions|speed]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _measure import ROOT, fmt, machine, measure, write_readme_section

START, END = "<!-- transformers:start -->", "<!-- transformers:end -->"
WORK = ROOT / "build" / "bench-transformers"
SEQ = 128

MODELS = {
    "bert": dict(cls="BertModel", cfg="BertConfig", kw=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                             intermediate_size=3072), inputs=["input_ids", "attention_mask"]),
    "vit": dict(cls="ViTModel", cfg="ViTConfig", kw=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                          intermediate_size=3072, image_size=224, patch_size=16,
                                                          add_pooling_layer=False), inputs=["pixel_values"]),
}
LABEL = {"bert": "BERT-base encoder (seq 128)", "vit": "ViT-B/16 (224x224)"}


def source(name: str):
    """The transformers module (eval, seed 0), taking positional inputs, returning its last hidden state."""
    import torch
    import transformers
    from irbridge.models.hf_corpus import _first_output

    spec = MODELS[name]
    kw = dict(spec["kw"])
    pooling = kw.pop("add_pooling_layer", None)
    torch.manual_seed(0)
    cfg = getattr(transformers, spec["cfg"])(**kw)
    model = getattr(transformers, spec["cls"])(cfg) if pooling is None else getattr(transformers, spec["cls"])(cfg, add_pooling_layer=pooling)
    return _first_output(model.eval(), spec["inputs"])


def inputs(name: str, batch: int):
    """Seeded inputs as numpy arrays, in the source's input order."""
    import numpy as np

    rng = np.random.default_rng(batch)
    if name == "vit":
        return [rng.standard_normal((batch, 3, 224, 224), np.float32)]
    return [rng.integers(3, 30000, (batch, SEQ)).astype(np.int64), np.ones((batch, SEQ), np.int64)]


def onnx_file(name: str) -> Path:
    """The TorchScript export (opset 17, dynamic axes), written once."""
    path = WORK / f"{name}.onnx"
    if not path.exists():
        import torch

        WORK.mkdir(parents=True, exist_ok=True)
        names = MODELS[name]["inputs"]
        axes = {0: "batch"} if name == "vit" else {0: "batch", 1: "sequence"}
        torch.onnx.export(source(name), tuple(torch.from_numpy(a) for a in inputs(name, 2)), str(path),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes={n: axes for n in names},
                          opset_version=17, dynamo=False)
    return path


def _timed(fn, args, runs: list[list[float]], k: int) -> None:
    t = time.perf_counter()
    fn(*args)
    runs[k].append(time.perf_counter() - t)


def worker_torch(names, batches, repeats) -> list[dict]:
    import torch

    from irbridge.exporters.torch import load_saved

    torch.set_num_threads(2)
    rows = []
    for name in names:
        src = source(name)
        exported = load_saved(WORK / f"{name}_torch")
        for batch in batches:
            args = [torch.from_numpy(a) for a in inputs(name, batch)]
            runs: list[list[float]] = [[], []]
            with torch.no_grad():
                src(*args), exported(*args)  # warm-up
                for _ in range(repeats):
                    for k, fn in enumerate((src, exported)):
                        _timed(fn, args, runs, k)
            rows.append({"target": "torch", "model": name, "batch": batch,
                         "source": statistics.median(runs[0]) * 1000, "export": statistics.median(runs[1]) * 1000})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def worker_keras(names, batches, repeats) -> list[dict]:
    import keras
    import tensorflow as tf

    import irbridge.keras_layers  # noqa: F401 - registers irbridge's layers for load_model

    rows = []
    for name in names:
        model = keras.saving.load_model(WORK / f"{name}.keras")
        fn = tf.function(lambda *xs, m=model: m(list(xs) if len(xs) > 1 else xs[0], training=False), jit_compile=False)
        for batch in batches:
            args = [tf.constant(a) for a in inputs(name, batch)]
            if name == "vit":  # the Keras model takes NHWC images
                args = [tf.transpose(args[0], (0, 2, 3, 1))] if model.inputs[0].shape[-1] == 3 else args
            runs: list[list[float]] = [[]]
            fn(*args)
            for _ in range(repeats):
                _timed(fn, args, runs, 0)
            rows.append({"target": "keras", "model": name, "batch": batch, "export": statistics.median(runs[0]) * 1000})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def conversions(names) -> list[dict]:
    """Checked conversion time and peak memory in fresh processes, beside the floor."""
    import irbridge
    from irbridge.exporters.onnx import weights_bytes

    pre = {"torch": "import irbridge, torch, onnxruntime, onnxscript",
           "keras": "import irbridge, tensorflow, keras, onnxruntime, onnxscript, irbridge.keras_layers"}
    rows = []
    for name in names:
        src = onnx_file(name)
        weights = weights_bytes(irbridge.load(src))
        for target, out in (("torch", WORK / f"{name}_torch"), ("keras", WORK / f"{name}.keras")):
            got = measure(pre[target], f"irbridge.convert('{src}', '{target}', '{out}')")
            floor = (measure("import safetensors.torch as st",
                             f"st.save_file(st.load_file('{out}/weights.safetensors'), '{WORK}/floor.safetensors')")
                     if target == "torch" else
                     measure("import keras, irbridge.keras_layers",
                             f"keras.saving.load_model('{out}').save('{WORK}/floor.keras')"))
            rows.append({"model": name, "target": target, "weights": weights, "result": got, "floor": floor})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(conv: list[dict], speed: list[dict]) -> str:
    import importlib.metadata as md

    versions = {k: md.version(k) for k in ("torch", "tensorflow-cpu", "keras", "transformers")}
    src = {(r["model"], r["batch"]): r["source"] for r in speed if r["target"] == "torch"}
    lines = [machine(versions), "",
             "| model | target | batch | source PyTorch | irbridge export | export ÷ source | target |",
             "|---|---|---|---|---|---|---|"]
    for r in speed:
        base = src.get((r["model"], r["batch"]))
        ratio = r["export"] / base if base else float("nan")
        goal = 1.1 if r["target"] == "torch" else 1.3
        lines.append(f"| {LABEL[r['model']]} | {r['target']} | {r['batch']} | {base:.0f} ms | {r['export']:.0f} ms | "
                     f"{ratio:.2f} | {'met' if ratio <= goal else 'not met'} (≤ {goal}x) |")
    lines += ["", "| model | conversion | irbridge (checked) | floor (load + save) | ÷ floor | peak ÷ weights |",
              "|---|---|---|---|---|---|"]
    for r in conv:
        got, floor = r["result"], r["floor"]
        ok = isinstance(got, (tuple, list)) and isinstance(floor, (tuple, list))
        lines.append(f"| {LABEL[r['model']]} ({r['weights'] / 2**20:.0f} MiB) | ONNX -> {r['target']} | {fmt(got)} | "
                     f"{fmt(floor)} | {got[0] / floor[0]:.1f}x | {got[1] / r['weights']:.2f}x |" if ok else
                     f"| {LABEL[r['model']]} | ONNX -> {r['target']} | {fmt(got)} | {fmt(floor)} | — | — |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="bert,vit")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--only", choices=("conversions", "speed"),
                    help="measure only this part (the README table is then left as it is)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = args.models.split(",")
    if args.worker:
        work = {"torch": (worker_torch, [1, 8]), "keras": (worker_keras, [8])}[args.worker]
        print(json.dumps(work[0](names, work[1], args.repeats)))
        return
    for n in names:
        onnx_file(n)
    conv = conversions(names) if args.only != "speed" else []
    speed = []
    for target in ("torch", "keras") if args.only != "conversions" else ():  # one process per framework
        out = subprocess.run([sys.executable, __file__, "--worker", target, "--models", args.models,
                              "--repeats", str(args.repeats)], check=True, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        speed += json.loads(out.stdout.strip().splitlines()[-1])
    text = table(conv, speed)
    print(text)
    if not args.no_readme and args.only is None:
        write_readme_section(START, END, text)


if __name__ == "__main__":
    main()
