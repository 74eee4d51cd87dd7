"""`irbridge sweep`: one JSON object whose cells agree with converting each model alone; a hang
or a crash is a "failed" row; shards merge into the whole; the HTML report renders in Chromium.

Each cell is a child process that imports a framework (seconds each), so the models are tiny
and the sweeps few.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from irbridge import sweep as sw
from irbridge.cli import main
from tests.conftest import CHROMIUM, headless_chromium, make_model, seeded

ROOT = Path(__file__).resolve().parents[2]


def irbridge(*argv, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "irbridge", *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)


def convert_alone(capsys, model: Path, target: str, out: Path, *extra) -> tuple[int, dict]:
    code = main(["convert", str(model), "--to", target, "-o", str(out), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """conv.onnx (verifies), unique.onnx (Unique: no converter), corrupt.onnx, dense.keras."""
    d = tmp_path_factory.mktemp("models")
    conv = make_model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                       helper.make_node("Relu", ["c"], ["y"], name="relu")],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                      [numpy_helper.from_array(seeded((4, 3, 3, 3), 1), "w"),
                       numpy_helper.from_array(seeded((4,), 2), "b")])
    onnx.save(conv, d / "conv.onnx")
    unique = make_model([helper.make_node("Unique", ["x"], ["y"], name="unique", sorted=1)],
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    (d / "sub").mkdir()
    onnx.save(unique, d / "sub" / "unique.onnx")
    (d / "corrupt.onnx").write_bytes(b"\x08\x07not a model" * 8)
    (d / "notes.txt").write_text("not a model")
    keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
    km = keras.Sequential([keras.Input((8,)), keras.layers.Dense(6, activation="relu", name="fc1"),
                           keras.layers.Dense(3, name="fc2")], name="dense")
    km.save(d / "dense.keras")
    return d


@pytest.fixture(scope="module")
def swept(models, tmp_path_factory) -> tuple[dict, Path]:
    """The sweep of the folder to torch (--jobs 2), its JSON and its HTML report."""
    report = tmp_path_factory.mktemp("report") / "sweep.html"
    res = irbridge("sweep", models, "--to", "torch", "--jobs", "2", "--report", report, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout), report  # exactly one object: json.loads takes all of stdout


def test_finds_models_and_shards(models):
    found = sw.discover([models])
    assert [m.name for m in found] == ["conv.onnx", "corrupt.onnx", "dense.keras", "sub/unique.onnx"]
    assert [m.name for m in sw.shard(found, "1/2")] == ["conv.onnx", "dense.keras"]
    assert [m.name for m in sw.shard(found, "2/2")] == ["corrupt.onnx", "sub/unique.onnx"]
    with pytest.raises(ValueError):
        sw.shard(found, "3/2")


def test_discovery_pairs_caffe_files_and_skips_what_is_not_a_model(tmp_path):
    for name in ("net.prototxt", "net.caffemodel", "lonely.prototxt", "m.h5", "m.weights.h5", "readme.md",
                 "sm/saved_model.pb", "sm/variables/inner.onnx"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = sw.discover([tmp_path, tmp_path / "m.h5"])  # a file named twice is one model
    assert [(m.name, m.weights) for m in found] == [
        ("m.h5", None), ("net.prototxt", str(tmp_path / "net.caffemodel")), ("sm", None)]


def test_sweep_cells_agree_with_converting_each_model_alone(swept, models, tmp_path, capsys, torch):
    doc, _ = swept
    assert doc["ok"] and doc["targets"] == ["torch"]
    cells = {c["model"]: c for c in doc["cells"]}
    assert set(cells) == {"conv.onnx", "corrupt.onnx", "dense.keras", "sub/unique.onnx"}
    for c in doc["cells"]:
        assert set(c) >= {"model", "target", "status", "max_abs", "first_divergence", "unsupported_ops",
                          "error", "seconds"} and c["seconds"] > 0
    for name, c in cells.items():
        code, alone = convert_alone(capsys, models / name, "torch", tmp_path / name.replace("/", "_"))
        if code == 0:
            assert c["status"] == "verified", (c, alone)
            assert c["max_abs"] == pytest.approx(alone["check"]["max_abs"], rel=1e-3, abs=1e-9)
            assert c["error"] is None and c["unsupported_ops"] == []
        elif alone["error"]["kind"] == "unsupported":
            assert c["status"] == "unsupported"
            ops = {n.op_type for n in onnx.load(models / name).graph.node if n.name in alone["error"]["nodes"]}
            assert set(c["unsupported_ops"]) == ops
        else:
            assert c["status"] == "failed" and alone["error"]["kind"] in c["error"]
    # what the folder holds, stated independently of the code under test
    assert cells["conv.onnx"]["status"] == cells["dense.keras"]["status"] == "verified"
    assert cells["sub/unique.onnx"]["unsupported_ops"] == ["Unique"]
    assert cells["corrupt.onnx"]["status"] == "failed" and "corrupt.onnx" in cells["corrupt.onnx"]["error"]
    assert doc["totals"] == {"torch": {"verified": 2, "mismatch": 0, "unsupported": 1, "failed": 1}}
    assert doc["blocking_ops"] == {"Unique": ["sub/unique.onnx"]}


def test_keras_target_and_a_mismatch_agree_with_convert(models, tmp_path, capsys):
    """dense.keras to Keras verifies; conv.onnx held to zero tolerance against onnxruntime is a
    mismatch wherever the two frameworks round differently, exactly as `convert` says alone."""
    res = irbridge("sweep", models / "dense.keras", models / "conv.onnx", "--to", "keras", "--jobs", "2",
                   "--atol", "0", "--rtol", "0", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    cells = {c["model"]: c for c in json.loads(res.stdout)["cells"]}
    for name, c in cells.items():
        code, alone = convert_alone(capsys, models / name, "keras", tmp_path / (name + ".keras"),
                                    "--atol", "0", "--rtol", "0")
        assert c["status"] == {0: "verified", 1: "mismatch"}[code], (c, alone)
        assert c["max_abs"] == pytest.approx(alone["check"]["max_abs"], rel=1e-3, abs=1e-9)
        if code == 1:
            assert c["first_divergence"] == alone["check"]["first_divergence"]
            assert c["first_divergence"]["layer"] in c["error"]


def test_hang_and_out_of_memory_are_failed_rows(models):
    """A child over its time or its memory is killed or fails; the sweep goes on and says why."""
    res = irbridge("sweep", models / "conv.onnx", "--to", "torch", "--timeout", "1", "--json",
                   env={"IRBRIDGE_PROGRESS": "1"})
    assert res.returncode == 0
    (c,) = json.loads(res.stdout)["cells"]
    assert c["status"] == "failed" and c["error"] == "timed out after 1 s" and c["seconds"] < 30
    assert "1/1 models" in res.stderr  # progress, forced on for a log: plain lines on stderr

    res = irbridge("sweep", models / "conv.onnx", models / "sub", "--to", "torch,onnx", "--memory-mb", "300",
                   "--jobs", "2", "--json")
    doc = json.loads(res.stdout)
    assert res.returncode == 0 and len(doc["cells"]) == 4
    for c in doc["cells"]:  # torch does not even load in 300 MB; the ONNX export may fit
        if c["target"] == "torch":
            assert c["status"] == "failed" and c["error"].startswith("out of memory (limit 300 MB)"), c
    assert doc["totals"]["torch"]["failed"] == 2 and sum(doc["totals"]["onnx"].values()) == 2


def test_a_crashed_child_is_one_line():
    assert sw.interpret(-9, "", "")["error"] == "killed by SIGKILL"
    assert sw.interpret(-11, "", "Fatal Python error: Segmentation fault\n")["error"].startswith("killed by SIGSEGV")
    assert sw.interpret(134, "", "terminate called after throwing an instance of 'std::bad_alloc'\n",
                        2**30)["error"].startswith("out of memory (limit 1,024 MB)")
    assert sw.unsupported_ops("net.prototxt: 2 layer type(s) the Caffe importer does not convert: "
                              "roi (ROIPooling), prop (Python).") == ["ROIPooling", "Python"]
    exporter = ("3 node(s) cannot be converted to Keras:\n  - /a: Erf: no Keras converter for this op\n"
                "  - /b (layer b): Mul: input '/a_out' is a constant or comes from an unconverted node\n"
                "  - /c (layer c): Conv: 1-D convolution (the Keras exporter handles 2-D)\n")
    assert sw.unsupported_ops(exporter) == ["Erf", "Conv"]  # Mul fails only because Erf did


def test_shards_merge_into_the_whole_sweep(swept, models, tmp_path):
    doc, _ = swept
    parts = []
    for i in (1, 2):
        res = irbridge("sweep", models, "--to", "torch", "--jobs", "2", "--shard", f"{i}/2", "--json")
        assert res.returncode == 0, res.stderr[-3000:]
        parts.append(tmp_path / f"part{i}.json")
        parts[-1].write_text(res.stdout)
        assert json.loads(res.stdout)["models"] == 2
    res = irbridge("sweep", "--merge", *parts, "--json")
    assert res.returncode == 0, res.stderr
    merged = json.loads(res.stdout)

    def strip(cells):
        return [{k: v for k, v in c.items() if k != "seconds"} for c in cells]

    assert strip(merged["cells"]) == strip(doc["cells"])
    assert merged["totals"] == doc["totals"] and merged["blocking_ops"] == doc["blocking_ops"]
    bad = irbridge("sweep", "--merge", models / "notes.txt", "--json")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["kind"] == "usage"




@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs Debian's)")
def test_html_report_renders_with_the_counts(swept, tmp_path):
    doc, report = swept
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "loads something from the network"

    def chromium(*args, url_suffix=""):
        return headless_chromium(f"{report}{url_suffix}", tmp_path, *args)

    shot = tmp_path / "sweep.png"
    chromium(f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    dom = chromium("--dump-dom")
    assert 'data-ready="1"' in dom  # the inline script ran
    n = len(doc["cells"])
    assert f"{n} of {n} cells shown" in dom
    for target, counts in doc["totals"].items():
        for status, count in counts.items():
            shown = re.search(rf'data-target="{target}" data-status="{status}">(\d+)<', dom)
            assert shown and int(shown.group(1)) == count
            rows = re.findall(rf'<tr class="cell {status}" data-status="{status}" data-target="{target}"', dom)
            assert len(rows) == count

    # filtered to the failures through the URL, sorted by time: only those rows stay visible
    dom = chromium("--dump-dom", url_suffix="#status=failed&sort=seconds&desc=1")
    visible = re.findall(r'<tr class="cell (\w+)"[^>]*?(hidden="")?>', dom)
    failed = doc["totals"]["torch"]["failed"]
    assert f"{failed} of {n} cells shown" in dom
    assert sorted(s for s, h in visible if not h) == ["failed"] * failed
    assert 'class="sorted desc"' in dom
