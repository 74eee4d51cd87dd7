"""Published-style exports (TorchScript, opset 17, dynamic axes) of today's architectures convert
to PyTorch through the full check (two sizes per free dim), and the written model.py, reloaded as
a user would, matches onnxruntime on the original file at a third size. Float16 exports are held
to fp16's tolerance (DESIGN.md §6)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from irbridge.models import hf_zoo

import irbridge

pytestmark = pytest.mark.slow
pytest.importorskip("torch")
pytest.importorskip("transformers")

FP32 = ["t5_encoder", "clip_vision", "deit", "convnext", "efficientnet", "resnet", "whisper_encoder"]
FP16 = ["t5_encoder", "clip_vision", "deit", "convnext", "resnet", "whisper_encoder"]


def _third_size(name: str, dtype) -> dict[str, np.ndarray]:
    """Inputs at batch 5 (and sequence 21): a size neither check run used."""
    rng = np.random.default_rng(5)
    feeds = {}
    for n, shape, kind in hf_zoo.ARCHITECTURES[name][1]:
        shape = (5,) + tuple(21 if (k == 1 and kind in ("ids", "mask")) else d for k, d in enumerate(shape[1:], 1))
        if kind == "ids":
            feeds[n] = rng.integers(3, hf_zoo.VOCAB, shape).astype(np.int64)
        elif kind == "mask":
            feeds[n] = (np.arange(shape[1]) < rng.integers(1, shape[1] + 1, (shape[0], 1))).astype(np.int64)
        else:
            feeds[n] = rng.standard_normal(shape).astype(dtype)
    return feeds


CASES = [(n, False) for n in FP32] + [(n, True) for n in FP16]


@pytest.mark.parametrize("name, half", CASES, ids=[f"{n}-{'fp16' if h else 'fp32'}" for n, h in CASES])
def test_published_export_converts_to_torch_and_runs_at_every_size(name, half, tmp_path):
    import torch

    from irbridge.exporters.torch import load_saved
    src = hf_zoo.export(name, tmp_path / f"{name}.onnx", half=half)
    res = irbridge.convert(src, "torch", tmp_path / "out")
    rep = res.report
    assert rep.ok, str(rep)
    assert rep.tolerance == ("fp16" if half else "fp32")
    batches = [next(iter(s.values()))[0] for s in rep.shapes]
    assert batches == [2, 3], rep.shapes  # the free batch ran at two sizes, never 1 alone
    assert not [n for n in rep.notes if "proves nothing" in n], rep.notes  # hf_zoo.redraw: no all-zero head

    feeds = _third_size(name, np.float16 if half else np.float32)
    ref = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, feeds)
    model = load_saved(tmp_path / "out")
    with torch.no_grad():
        got = model(*[torch.from_numpy(feeds[n]) for n in res.exported.irbridge_inputs])
    got = got if isinstance(got, tuple) else (got,)
    from irbridge.verify import compare

    for r, g in zip(ref, got):
        c = compare("out", r, g.numpy())
        assert c.ok, (name, c)
