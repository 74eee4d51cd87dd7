"""The nine zoo models to TF SavedModels, loaded in a fresh process with tf.saved_model.load:
the outputs are onnxruntime's."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from irbridge.models import onnx_zoo

from tests.conftest import assert_close, ort_run, seeded, zoo_subset

NAMES = zoo_subset(onnx_zoo.NAMES, ("squeezenet", "resnet50", "inception_v1", "shufflenet"))
LOAD_ALL = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
x = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    m = tf.saved_model.load(path)
    y = next(iter(m.signatures["serving_default"](tf.constant(x)).values())).numpy()
    np.save(path + ".out.npy", y)
    out[path] = list(y.shape)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_zoo_models_as_savedmodels_in_a_fresh_process(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    import irbridge

    x = seeded((1, 3, 224, 224), seed=8)
    refs, paths, perms = {}, [], {}
    for name in NAMES:
        model = onnx_zoo.light_model(name, seed=9)
        refs[name] = ort_run(model, {model.graph.input[0].name: x})[0]
        res = irbridge.convert(model, "tf", tmp_path / name)
        assert res.report.ok, f"{name}: {res.report}"
        paths.append(str(tmp_path / name))
        perms[name] = res.exported.irbridge_info["outputs"][0][1]  # how the output is laid out
        del res
        keras.backend.clear_session()  # each model's graphs and weights go before the next
    np.save(tmp_path / "x.npy", np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    run = subprocess.run([sys.executable, "-c", LOAD_ALL, str(tmp_path / "x.npy"), *paths],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    json.loads(run.stdout.strip().splitlines()[-1])
    for name in NAMES:
        got = np.load(tmp_path / f"{name}.out.npy")
        assert_close(got.transpose(np.argsort(perms[name])), refs[name])
