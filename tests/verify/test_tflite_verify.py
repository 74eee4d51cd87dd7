"""`irbridge verify SRC model.tflite`: the file run in LiteRT against onnxruntime. float32 -> pass/fail
by DESIGN §6 at two batch sizes; quantized -> the accuracy report (text, JSON, HTML: the worst
layer highlighted, the same numbers as the JSON), --max-error -> exit 1; damaged files -> exit 2."""

from __future__ import annotations

import json
import os
import re
import stat

import numpy as np
import onnx
import pytest

from tests.conftest import CHROMIUM, headless_chromium
from tests.exporters.test_tflite import hard_model

pytest.importorskip("tensorflow", reason="tensorflow is not installed (pip install irbridge[tf])")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install irbridge[tf])")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """hard.onnx, its float32 .tflite, its int8 .tflite (calibrated), and an easy model's float32 file."""
    import irbridge

    d = tmp_path_factory.mktemp("tfl")
    onnx.save(hard_model(), d / "hard.onnx")
    calib = {"x": np.random.default_rng(1).standard_normal((24, 3, 16, 16)).astype(np.float32)}
    irbridge.convert(d / "hard.onnx", "tflite", d / "f32.tflite")
    irbridge.convert(d / "hard.onnx", "tflite", d / "q.tflite", quantize="int8", calibration=calib)
    irbridge.convert(hard_model(huge=1.0), "tflite", d / "other.tflite")  # other weights: must not match
    return d


def _verify(capsys, *args):
    from irbridge.cli import main

    code = main(["verify", *map(str, args)])
    return code, capsys.readouterr().out


def test_float32_file_passes_at_two_batch_sizes(files, capsys):
    code, out = _verify(capsys, files / "hard.onnx", files / "f32.tflite", "--json")
    d = json.loads(out)
    assert code == 0 and d["ok"] and "accuracy" not in d
    assert [s["x"][0] for s in d["shapes"]] == [2, 3]
    assert d["outputs"][0]["name"] == "y" and d["outputs"][0]["tolerance"] == "fp32"


def test_a_wrong_file_fails(files, capsys):
    code, out = _verify(capsys, files / "hard.onnx", files / "other.tflite", "--json")
    d = json.loads(out)
    assert code == 1 and not d["ok"] and d["outputs"][0]["max_abs"] > 1.0


def test_float32_layerwise_reads_the_layers_from_the_file(files, capsys):
    code, out = _verify(capsys, files / "hard.onnx", files / "f32.tflite", "--layerwise", "--json")
    d = json.loads(out)
    assert code == 0 and {row["name"] for row in d["layers"]} == {"conv_a", "conv_huge", "conv_c"}
    assert all(row["ok"] for row in d["layers"])


def test_int8_file_report_text_json_and_html(files, capsys, tmp_path):
    html_path = tmp_path / "r.html"
    code, out = _verify(capsys, files / "hard.onnx", files / "q.tflite", "--json", "--report", html_path)
    assert code == 0
    acc = json.loads(out)["accuracy"]
    assert acc["quantize"] == "int8" and acc["worst"] == "conv_huge" and acc["max_error"] is None
    assert [row["layer"] for row in acc["layers"]] == ["conv_a", "conv_huge", "conv_c"]  # graph order
    page = html_path.read_text()
    assert "MEASURED" in page and "accuracy measured, no pass/fail" in page and "atol" not in page
    assert "<b>Worst layer: conv_huge</b>" in page
    rows = re.findall(r"<tr( class='worst')?><td>(\w+)</td>(.*?)</tr>", page)
    assert [name for _, name, _ in rows] == ["y", "conv_a", "conv_huge", "conv_c"]
    assert [name for worst, name, _ in rows if worst] == ["conv_huge"]
    cells = {name: re.findall(r"<td class='num'>([^<]*)</td>", rest) for _, name, rest in rows}
    (o,) = acc["outputs"]
    assert cells["y"][:4] == [f"{o['max_abs']:.3g}", f"{o['rel_error']:.3g}", f"{o['channel_error']:.3g}",
                              f"{o['cosine']:.5f}"]
    for row in acc["layers"]:
        assert cells[row["layer"]] == [f"{row[k]:.3g}" for k in ("max_abs", "rel_error", "channel_error")] + \
            [f"{row['cosine']:.5f}", f"{row['added']:.3g}"]
    code, out = _verify(capsys, files / "hard.onnx", files / "q.tflite")
    head = out.splitlines()[0]
    assert head == "verification: MEASURED (quantized int8: accuracy measured, no pass/fail)", head
    assert "conv_huge (Conv): adds" in out


def test_int8_file_max_error_fails_with_exit_1(files, capsys, tmp_path):
    code, out = _verify(capsys, files / "hard.onnx", files / "q.tflite", "--max-error", "1e-3",
                        "--report", tmp_path / "r.html")
    assert code == 1
    assert out.splitlines()[0] == ("verification: MISMATCH (quantized int8: every output's max_abs <= 0.001 "
                                   "(--max-error))")
    assert "over --max-error" in (tmp_path / "r.html").read_text()
    code, out = _verify(capsys, files / "hard.onnx", files / "q.tflite", "--max-error", "1e3", "--json")
    assert code == 0 and json.loads(out)["accuracy"]["ok"]


def test_max_error_on_a_float32_file_is_a_usage_error(files, capsys):
    code, out = _verify(capsys, files / "hard.onnx", files / "f32.tflite", "--max-error", "0.1", "--json")
    assert code == 2 and "float32" in json.loads(out)["error"]["message"]


@pytest.mark.parametrize("damage", ["truncated", "not_tflite", "bad_notes"])
def test_damaged_file_exit_2_naming_it(files, capsys, tmp_path, damage):
    from irbridge.exporters.tflite.tflite_file import embed

    flat = (files / "f32.tflite").read_bytes()
    bad = tmp_path / f"{damage}.tflite"
    if damage == "truncated":
        bad.write_bytes(flat[: len(flat) // 2])
    elif damage == "not_tflite":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    else:  # notes that are no layout: refused, not guessed
        bad.write_bytes(embed(flat, {"inputs": [["x", ["a", "b"]]], "outputs": [["y", [0]]]}))
    code, out = _verify(capsys, files / "hard.onnx", bad, "--json")
    err = json.loads(out)["error"]
    assert code == 2 and err["kind"] == "bad_input" and f"{damage}.tflite" in err["message"], err


def test_a_file_without_irbridge_notes_is_laid_out_by_shape(files, capsys, tmp_path):
    """Another converter's file (here irbridge's with its notes removed): NHWC found from the shapes."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray((files / "f32.tflite").read_bytes()), 0)
    model.metadata = [m for m in model.metadata if m.name not in ("irbridge", b"irbridge")]
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    (tmp_path / "plain.tflite").write_bytes(bytes(b.Output()))
    code, out = _verify(capsys, files / "hard.onnx", tmp_path / "plain.tflite", "--json")
    d = json.loads(out)
    assert code == 0 and d["ok"] and [s["x"][0] for s in d["shapes"]] == [2, 3]
    assert any("no irbridge notes" in n for n in d["notes"])


def test_saved_tflite_has_the_usual_mode(files, tmp_path):
    import irbridge

    flat = irbridge.export(irbridge.normalize(irbridge.load(files / "hard.onnx")), "tflite", check=False)
    umask = os.umask(0o027)
    try:
        irbridge.save(flat, tmp_path / "m.tflite")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.tflite").stat().st_mode) == 0o640




@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`make test` installs Debian's)")
def test_quantized_html_renders_in_chromium(files, capsys, tmp_path):
    report = tmp_path / "r.html"
    assert _verify(capsys, files / "hard.onnx", files / "q.tflite", "--report", report)[0] == 0
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report.read_text()), "loads from the network"

    def chromium(*args):
        return headless_chromium(report, tmp_path, *args, size="1000,700")

    shot = tmp_path / "r.png"
    chromium(f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000
    dom = chromium("--dump-dom")
    assert re.search(r"<tr class=\"worst\"><td>conv_huge</td>", dom), dom[-3000:]


def test_the_python_api_takes_a_tflite_path(files):
    """irbridge.verify(source, "model.tflite"): float32 pass/fail, a quantized file's accuracy,
    max_error turning it into a failure, and a wrong file failing."""
    import irbridge
    from irbridge.errors import InputError

    good = irbridge.verify(files / "hard.onnx", str(files / "f32.tflite"))
    assert good.ok and [s["x"][0] for s in good.shapes] == [2, 3]
    assert not irbridge.verify(files / "hard.onnx", files / "other.tflite").ok
    q = irbridge.verify(files / "hard.onnx", files / "q.tflite")
    assert q.ok and q.accuracy["outputs"]
    assert not irbridge.verify(files / "hard.onnx", files / "q.tflite", max_error=1e-6).ok
    with pytest.raises(InputError):
        irbridge.verify(files / "hard.onnx", files / "hard.onnx", max_error=0.1)
