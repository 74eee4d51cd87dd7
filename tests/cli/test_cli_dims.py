"""The CLI keeps free dims free and says so: `--dynamic` for PyTorch sources, `--input` shapes
that trace a PyTorch module (batch still free) or fix an ONNX model's dims."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irbridge import cli

torch = pytest.importorskip("torch")


def _convert(capsys, *argv):
    code = cli.main(["convert", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_pickled_module_keeps_its_batch_free_and_frees_what_dynamic_names(capsys, tmp_path):
    from irbridge.models.dynamic_zoo import audio

    from irbridge.exporters.torch import load_saved

    src = tmp_path / "audio.pt"
    torch.save(audio(), src)
    out = tmp_path / "audio_torch"
    code, d = _convert(capsys, str(src), "--trust-pickle", "--input", "input_values:1,1000",
                       "--dynamic", "input_values:1=samples", "--to", "torch", "-o", str(out))
    assert code == 0, d
    assert {(f["axis"], f["label"]) for f in d["dims"]["free"]} == {(0, "batch"), (1, "samples")}
    assert d["dims"]["fixed"] == []
    runs = [s["input_values"] for s in d["check"]["shapes"]]
    assert [r[0] for r in runs] == [2, 3] and runs[0][1] != runs[1][1] and min(r[1] for r in runs) >= 8

    net, ref = load_saved(out), audio().eval()
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((4, 1400)).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), ref(x).numpy(), rtol=1e-4, atol=1e-5)


def test_a_bad_dynamic_spec_is_exit_2_naming_the_flag(capsys, tmp_path):
    from irbridge.models.dynamic_zoo import audio

    src = tmp_path / "audio.pt"
    torch.save(audio(), src)
    code, d = _convert(capsys, str(src), "--trust-pickle", "--input", "input_values:1,1000",
                       "--dynamic", "input_values:one", "--to", "onnx", "-o", str(tmp_path / "a.onnx"))
    assert code == 2 and "--dynamic" in d["error"]["message"]
    assert not (tmp_path / "a.onnx").exists()
