"""Shared test helpers: onnxruntime as the independent reference, seeded inputs."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

# The exhaustive model matrices (every keras.applications family, every zoo model to TFLite and
# TF, ...) run with IRBRIDGE_FULL_ZOO=1 (`make test-zoo`); `make test` runs a few of each, chosen
# to cover every code path those matrices found, so that CI stays inside its time budget.
FULL_ZOO = os.environ.get("IRBRIDGE_FULL_ZOO") == "1"


def zoo_subset(names, everyday) -> list:
    """All of `names` under IRBRIDGE_FULL_ZOO=1, else those among `everyday`, in `names`' order."""
    names = list(names)
    return names if FULL_ZOO else [n for n in names if n in set(everyday)]


def ort_run(model, feeds: dict) -> list[np.ndarray]:
    """Run an onnx.ModelProto or onnx_ir.Model in onnxruntime (the reference)."""
    import onnx_ir as ir
    import onnxruntime as ort

    from irbridge.verify.onnx_runner import _in_memory_proto

    # a loaded file's large weights are mapped (external references): inline them for the bytes
    proto = _in_memory_proto(model) if isinstance(model, ir.Model) else model
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def seeded(shape, seed=0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close(got, ref, rtol=1e-4, atol_scale=1e-5):
    """DESIGN.md §6 tolerance: |got-ref| <= atol + rtol*|ref|, atol = 1e-5*max(1, max|ref|)."""
    ref = np.asarray(ref)
    got = np.asarray(got)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(got, ref)
        return
    atol = atol_scale * max(1.0, float(np.max(np.abs(ref)))) if ref.size else 0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install irbridge[torch])")


def make_model(nodes, inputs, outputs, initializers=(), opset=18) -> onnx.ModelProto:
    graph = onnx.helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


CHROMIUM = __import__("shutil").which("chromium") or __import__("shutil").which("chromium-browser")


def headless_chromium(page, work, *args, size="1200,900") -> str:
    """Run Debian's chromium headless on the local file `page` (no network, a fresh profile in
    `work`) with `args` (--screenshot=F, --dump-dom); its stdout."""
    import subprocess

    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={work}/ud", f"--window-size={size}", *args, f"file://{page}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout
