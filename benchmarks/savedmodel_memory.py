"""Peak memory of importing TF sources with VGG-16-size weights (138 M parameters, 528 MiB of
float32): a SavedModel directory, a frozen GraphDef .pb and a live tf.function, each imported with
`irbridge.load` (the import check against TF itself included) in a fresh process.

Peak is the process's high-water mark above its resident size once irbridge, TF, tf2onnx and
onnxruntime are imported (benchmarks/_measure.py), and for the tf.function once its Keras model
is built (its weights are the source's, not the import's). Target (issue 17): the SavedModel under 2x its
weights above that baseline. The weights stay out of the TF graph (importers/tf_graphdef.py):
variables and large constants become ONNX initializers that share the values TF holds.

    .venv/bin/python benchmarks/savedmodel_memory.py [--dir /tmp/irbridge-sm] [--json]

Prints a markdown table (or JSON); README text is the caller's business.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import fmt, machine, measure  # noqa: E402

MAKE = """
import numpy as np, keras, tensorflow as tf
km = keras.applications.VGG16(weights=None)          # 224 x 224, 1000 classes, Keras's seeded init
km.export("{dir}/vgg16_sm", format="tf_saved_model", verbose=False)
fn = tf.function(lambda x: km(x, training=False)).get_concrete_function(tf.TensorSpec((None, 224, 224, 3), tf.float32, name="x"))
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
open("{dir}/vgg16.pb", "wb").write(convert_variables_to_constants_v2(fn).graph.as_graph_def().SerializeToString())
np.save("{dir}/weights_bytes.npy", np.array(sum(int(np.prod(v.shape)) * 4 for v in km.weights)))
"""
SETUP = "import irbridge, tensorflow, tf2onnx, onnxruntime, keras, numpy as np"
# (setup after the imports, not measured; the import measured)
STEPS = {
    "SavedModel directory": ("", "m = irbridge.load('{dir}/vgg16_sm')"),
    "frozen GraphDef .pb": ("", "m = irbridge.load('{dir}/vgg16.pb', inputs={{'x': (None, 224, 224, 3)}})"),
    "tf.function (live variables)": (
        "import tensorflow as tf; km = keras.applications.VGG16(weights=None); "
        "fn = tf.function(lambda x: km(x, training=False), "
        "input_signature=[tf.TensorSpec((None, 224, 224, 3), tf.float32, name='x')])",
        "m = irbridge.load(fn)"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/irbridge-sm")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cap-gb", type=float, default=12)
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "weights_bytes.npy").exists():
        made = measure("", MAKE.format(dir=d), timeout=1800)
        if isinstance(made, str):
            raise SystemExit(f"could not write the models: {made}")
    import numpy as np

    weights = int(np.load(d / "weights_bytes.npy"))
    rows = []
    for label, (setup, body) in STEPS.items():
        got = measure(SETUP + "\n" + setup, body.format(dir=d), cap_bytes=int(args.cap_gb * 2**30))
        ratio = None if isinstance(got, str) else round(got[1] / weights, 2)
        rows.append({"source": label, "result": fmt(got), "peak_over_weights": ratio})
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    import irbridge

    note = machine({"irbridge": irbridge.__version__, "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                    "onnxruntime": onnxruntime.__version__})
    if args.json:
        print(json.dumps({"weights_mib": round(weights / 2**20), "rows": rows, "machine": note}, indent=1))
        return
    print(f"Importing VGG-16-size TF sources ({weights / 2**20:,.0f} MiB of weights), checked against TF:\n")
    print("| source | time, peak above baseline | peak / weights |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['source']} | {r['result']} | {r['peak_over_weights'] if r['peak_over_weights'] else '—'} |")
    print(f"\n{note}")


if __name__ == "__main__":
    main()
