"""The wheel as a user gets it: built from a copy of the sources, installed with [all] into a
fresh virtual environment outside the checkout, it converts the zoo's SqueezeNet to every
target and binds an .npz of its weights (issue 15).

Every command runs from a temporary directory with a clean environment, so nothing is
imported from the source tree. Slow: installing [all] takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "irbridge", "passes", "models")


def _run(cmd, cwd, timeout=1800, check=True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {res.returncode}\n"
                             f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}")
    return res


def _source_packages() -> set[str]:
    """Every package the sources hold, named as it must be installed."""
    mounts = {"irbridge": "irbridge", "passes": "irbridge.passes", "models": "irbridge.models"}
    out = set()
    for folder, name in mounts.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            out.add(".".join((name, *rel)))
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, Path]:
    """(work dir, the fresh venv's bin/) with the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    assert ROOT not in work.parents
    src = work / "src"
    for name in SOURCES:  # a copy: building leaves build/ and *.egg-info beside the sources
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(p, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", src], work)
    (wheel,) = (work / "dist").glob("irbridge-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    shipped = {n.rpartition("/")[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert _source_packages() <= shipped, f"missing from the wheel: {sorted(_source_packages() - shipped)}"
    assert not any(n.startswith(("passes/", "models/")) for n in names), "passes/models shipped top-level"
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as z:
        assert "License-Expression: Apache-2.0" in z.read(meta).decode()

    _run([sys.executable, "-m", "venv", work / "venv"], work)
    bin_ = work / "venv" / "bin"
    _run([bin_ / "python", "-m", "pip", "install", "-q", f"{wheel}[all]",
          "-c", ROOT / "requirements" / "constraints.txt"], work, timeout=3600)
    return work, bin_


def test_installed_package_is_the_wheel(venv):
    work, bin_ = venv
    assert _run([bin_ / "irbridge", "--version"], work).stdout.strip() == "irbridge 0.1.0"
    where = _run([bin_ / "python", "-c", "import irbridge, irbridge.passes, irbridge.models, irbridge.binding, "
                  "irbridge.exporters.keras.ops, irbridge.exporters.tf, irbridge.verify; print(irbridge.__file__)"],
                 work).stdout.strip()
    assert str(work / "venv") in where and str(ROOT) not in where


def test_wheel_converts_squeezenet_to_every_target_and_binds(venv):
    work, bin_ = venv
    # the model, built by the installed irbridge.models (its seeded weights, and a second draw)
    _run([bin_ / "python", "-c", textwrap.dedent("""
        import numpy as np, onnx
        from onnx import numpy_helper
        from irbridge.models.onnx_zoo import light_model
        m = light_model("squeezenet", seed=0)
        onnx.save(m, "squeezenet.onnx")
        onnx.save(light_model("squeezenet", seed=1), "squeezenet_arch.onnx")
        roles = {"w": "weight", "b": "bias"}  # conv1_w_0 -> conv1/weight
        np.savez("squeezenet_weights.npz", **{
            t.name.rsplit("_", 2)[0] + "/" + roles[t.name.rsplit("_", 2)[1]]: numpy_helper.to_array(t)
            for t in m.graph.initializer})
        """)], work)
    outputs = {"torch": "sq_torch", "keras": "sq.keras", "tf": "sq_savedmodel", "onnx": "sq.onnx"}
    for target, out in outputs.items():
        res = _run([bin_ / "irbridge", "convert", "squeezenet.onnx", "--to", target, "-o", out, "--json"], work)
        rep = json.loads(res.stdout)
        assert rep["ok"] and rep["check"]["ok"], (target, rep)
        assert (work / out).exists()

    # the artifacts reload in their own frameworks, and agree with onnxruntime on the source
    x = np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(work / "x.npy", x)
    res = _run([bin_ / "python", "-c", textwrap.dedent("""
        import sys, numpy as np, torch, keras, tensorflow as tf, onnxruntime as ort
        import safetensors.torch
        sys.path.insert(0, "sq_torch")
        from model import Model
        x = np.load("x.npy")
        m = Model(); m.load_state_dict(safetensors.torch.load_file("sq_torch/weights.safetensors")); m.eval()
        with torch.no_grad():
            t = m(torch.from_numpy(x)).numpy()
        o = ort.InferenceSession("sq.onnx").run(None, {"data_0": x})[0]
        k = keras.saving.load_model("sq.keras")
        sig = tf.saved_model.load("sq_savedmodel").signatures["serving_default"]
        np.savez("reloaded.npz", torch=t, onnx=o)
        print(len(k.layers), sorted(sig.structured_outputs))
        """)], work)
    assert res.stdout.strip()
    import onnxruntime as ort  # the reference: the checkout's onnxruntime on the source model

    ref = ort.InferenceSession(str(work / "squeezenet.onnx")).run(None, {"data_0": x})[0]
    got = np.load(work / "reloaded.npz")
    for name in ("torch", "onnx"):
        np.testing.assert_allclose(got[name].reshape(ref.shape), ref, rtol=1e-4, atol=1e-5 * max(1, np.abs(ref).max()))

    # bind the seed-0 weights onto the seed-1 architecture: it becomes the seed-0 model
    res = _run([bin_ / "irbridge", "bind", "squeezenet_weights.npz", "--onto", "squeezenet_arch.onnx",
                "-o", "bound.onnx", "--json"], work)
    rep = json.loads(res.stdout)
    assert rep["ok"] and not rep["unassigned"], rep
    bound = ort.InferenceSession(str(work / "bound.onnx")).run(None, {"data_0": x})[0]
    other = ort.InferenceSession(str(work / "squeezenet_arch.onnx")).run(None, {"data_0": x})[0]
    assert np.abs(other - ref).max() > 1e-3  # the architecture's own weights give another answer
    np.testing.assert_allclose(bound, ref, rtol=1e-5, atol=1e-6)
