"""Determinism (DESIGN.md §7): the same input gives byte-identical outputs, whatever the process
and its hash seed. ONNX files, model.py and weights.safetensors are compared byte for byte;
Keras's .keras zip records the save time (metadata.json "date_saved"), so it is not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(args: list[str], seed: str, cwd) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_outputs_are_byte_identical_across_processes(tmp_path, torch):
    for seed, out in (("1", "a"), ("2", "b")):
        (tmp_path / out).mkdir()
        # the source itself, from a torch module
        _run(["-m", "irbridge.models.demo", str(tmp_path / out)], seed, tmp_path)
        src = tmp_path / out / "resnet_small.onnx"
        _run(["-m", "irbridge.cli", "convert", str(src), "--to", "onnx", "-o", str(tmp_path / out / "c.onnx")],
             seed, tmp_path)
        _run(["-m", "irbridge.cli", "convert", str(src), "--to", "torch", "-o", str(tmp_path / out / "t")],
             seed, tmp_path)
    for rel in ("resnet_small.onnx", "c.onnx", "t/model.py", "t/weights.safetensors"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
