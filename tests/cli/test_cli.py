"""The `irbridge` command: JSON outputs, exit codes, nothing written on failure, fast --help."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import onnx
import pytest
from irbridge.models import onnx_zoo
from onnx import TensorProto, helper

from irbridge.cli import main
from tests.conftest import make_model, seeded


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def squeezenet(tmp_path):
    p = tmp_path / "squeezenet.onnx"
    onnx.save(onnx_zoo.light_model("squeezenet", seed=0), p)
    return p


def test_convert_json(capsys, squeezenet, tmp_path, torch):
    out_dir = tmp_path / "sq_torch"
    code, out, _ = run(capsys, "convert", str(squeezenet), "--to", "torch", "-o", str(out_dir), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["ok"] and d["target"] == "torch" and d["source_format"] == "onnx"
    assert d["check"]["ok"] and d["check"]["outputs"][0]["ok"]
    assert set(d["seconds"]) == {"import", "passes", "export", "check", "total"}
    from irbridge.passes import DEFAULT_PIPELINE

    assert d["passes"] == DEFAULT_PIPELINE
    assert d["parameters"] > 1_000_000
    assert (out_dir / "model.py").is_file() and (out_dir / "weights.safetensors").is_file()


def test_convert_to_onnx_and_dump_ir(capsys, squeezenet, tmp_path):
    dump = tmp_path / "ir"
    code, out, _ = run(capsys, "convert", str(squeezenet), "--to", "onnx", "-o", str(tmp_path / "o.onnx"),
                       "--dump-ir", str(dump), "--json")
    assert code == 0, out
    onnx.checker.check_model(str(tmp_path / "o.onnx"))
    from irbridge.passes import DEFAULT_PIPELINE

    assert (dump / "00-imported.onnx").is_file() and (dump / f"01-{DEFAULT_PIPELINE[0]}.onnx").is_file()


def test_verification_failure_exits_1_and_writes_nothing(capsys, tmp_path, torch):
    from irbridge.models.torch_zoo import resnet_small

    import irbridge
    from irbridge.exporters.onnx import save_onnx

    src = save_onnx(irbridge.load(resnet_small(), inputs={"x": (1, 3, 64, 64)}), tmp_path / "r.onnx")
    out_dir = tmp_path / "never"
    code, out, _ = run(capsys, "convert", str(src), "--to", "torch", "-o", str(out_dir),
                       "--atol", "0", "--rtol", "0", "--json")
    assert code == 1
    d = json.loads(out)
    assert d["ok"] is False and d["check"]["ok"] is False
    assert not out_dir.exists()
    assert not list(tmp_path.glob(".never*"))  # no temporary leftovers


def test_unsupported_ops_are_all_listed_exit_2(capsys, tmp_path, torch):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
             helper.make_node("Unique", ["a"], ["b"], name="unique_1"),
             helper.make_node("RoiAlign", ["a", "a", "b"], ["y"], name="roi_2")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    src = tmp_path / "u.onnx"
    onnx.save(model, src)
    out_dir = tmp_path / "out"
    code, out, _ = run(capsys, "convert", str(src), "--to", "torch", "-o", str(out_dir), "--json")
    assert code == 2
    err = json.loads(out)["error"]
    assert err["kind"] == "unsupported"
    assert err["nodes"] == ["unique_1", "roi_2"]
    assert "Unique" in err["message"] and "RoiAlign" in err["message"]
    assert not out_dir.exists()
    code, out, errtext = run(capsys, "convert", str(src), "--to", "torch", "-o", str(out_dir))
    assert code == 2 and "Traceback" not in errtext and "unique_1" in errtext


@pytest.mark.parametrize("content", [None, b"\x00\x01not onnx at all" * 5])
def test_missing_or_corrupt_file_exit_2(capsys, tmp_path, content):
    src = tmp_path / "m.onnx"
    if content is not None:
        src.write_bytes(content)
    code, out, err = run(capsys, "convert", str(src), "--to", "onnx", "-o", str(tmp_path / "o.onnx"))
    assert code == 2
    assert "m.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "o.onnx").exists()
    code, out, _ = run(capsys, "inspect", str(src), "--json")
    assert code == 2 and json.loads(out)["ok"] is False


def test_existing_output_survives_a_failed_run(capsys, tmp_path):
    good = tmp_path / "o.onnx"
    good.write_bytes(b"precious")
    code, _, _ = run(capsys, "convert", str(tmp_path / "missing.onnx"), "--to", "onnx", "-o", str(good))
    assert code == 2 and good.read_bytes() == b"precious"


def test_usage_error_exit_2(capsys):
    code, out, _ = run(capsys, "convert", "x.onnx", "--json")
    assert code == 2 and json.loads(out)["error"]["kind"] == "usage"


def test_inspect_json(capsys, squeezenet):
    code, out, _ = run(capsys, "inspect", str(squeezenet), "--json")
    d = json.loads(out)
    assert code == 0
    assert d["format"] == "onnx" and d["opset"] == 9
    assert d["inputs"] == [{"name": "data_0", "shape": [1, 3, 224, 224], "dtype": "float"}]
    assert d["ops"]["Conv"] == 26 and d["nodes"] == sum(d["ops"].values())


def test_verify_json_and_inputs_npz(capsys, squeezenet, tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, data_0=seeded((1, 3, 224, 224)))
    code, out, _ = run(capsys, "verify", str(squeezenet), str(squeezenet), "--inputs", str(npz),
                       "--layerwise", "--json")
    d = json.loads(out)
    assert code == 0 and d["ok"] and d["first_divergence"] is None
    assert {"ok", "atol", "rtol", "outputs", "layers", "first_divergence"} <= set(d)
    assert d["shapes"] == [{"data_0": [1, 3, 224, 224]}]  # the user's inputs, as given
    assert len(d["layers"]) > 20


def test_passes_and_ops(capsys):
    code, out, _ = run(capsys, "passes", "--json")
    rows = json.loads(out)
    assert code == 0 and {"name", "description"} == set(rows[0])
    code, out, _ = run(capsys, "ops", "--target", "torch", "--markdown")
    assert code == 0 and "| Conv |" in out and "| LRN |" in out


def test_import_and_help_do_not_load_frameworks():
    code = ("import sys, irbridge, irbridge.cli; "
            "assert not {'torch', 'tensorflow', 'onnx'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "irbridge", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "convert" in r.stdout
    assert time.perf_counter() - t < 5  # generous on a loaded CI box; ~0.1 s measured here


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_view_serves_netron_and_the_model(squeezenet):
    pytest.importorskip("netron")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "irbridge", "view", str(squeezenet), "--port", str(port),
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert page is not None and "netron" in page.lower()
        data = urllib.request.urlopen(f"http://127.0.0.1:{port}/data/squeezenet.onnx", timeout=5).read()
        assert data == squeezenet.read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_progress_shows_stages_on_stderr_and_never_under_json(capsys, tmp_path, monkeypatch):
    from irbridge.models.onnx_zoo import light_model

    from irbridge import progress

    onnx.save(light_model("squeezenet"), tmp_path / "sq.onnx")
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setenv("IRBRIDGE_PROGRESS", "1")  # stderr is not a terminal here: force it on
    code, out, err = run(capsys, "convert", str(tmp_path / "sq.onnx"), "--to", "onnx", "-o", str(tmp_path / "a.onnx"))
    assert code == 0
    for stage in ("running the passes", "exporting to onnx", "checking the onnx export", "writing"):
        assert f"irbridge: {stage}" in err, err
    assert "MB of weights" in err
    monkeypatch.delenv("IRBRIDGE_PROGRESS")
    code, out, err = run(capsys, "convert", str(tmp_path / "sq.onnx"), "--to", "onnx", "-o", str(tmp_path / "b.onnx"),
                         "--json")
    assert code == 0 and "irbridge: running" not in err and json.loads(out)["ok"]
