"""Half-precision models (exported with model.half(), the way LLM weights ship) convert to
PyTorch with their layers built in float16: the written model.py + weights.safetensors,
reloaded as a user would, runs on float16 inputs and matches onnxruntime at fp16's tolerance
(DESIGN.md §6: atol 5e-3*max(1, max|ref|), rtol 5e-3); so does the in-memory GraphModule.

onnxruntime's CPU provider runs every op of these graphs in float16 (Conv, MatMul, Gemm,
LayerNormalization, Erf, Softmax ...), so the reference is onnxruntime on the fp16 file itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close
from tests.exporters.test_torch_dynamic import (
    BERT_SIZES,
    IMAGE_SIZES,
    load_as_user,
    make_feeds,
    ort_file,
    run_torch,
)

torch = pytest.importorskip("torch", reason="torch is not installed (pip install irbridge[torch])")

FP16 = {"rtol": 5e-3, "atol_scale": 5e-3}


@pytest.mark.parametrize("name,sizes", [("vit", IMAGE_SIZES[:2]), ("bert", BERT_SIZES[:2])])
def test_half_model_reloads_in_float16_and_matches(name, sizes, tmp_path):
    import onnx
    from irbridge.models import dynamic_zoo

    import irbridge

    path = dynamic_zoo.export_onnx(name, tmp_path / f"{name}.onnx", half=True)
    res = irbridge.convert(path, "torch", tmp_path / "out", check=False)
    user = load_as_user(tmp_path / "out")
    # layers are built in the source's dtype: nothing was silently upcast on loading
    assert {p.dtype for p in user.parameters()} == {torch.float16}
    text = (tmp_path / "out" / "model.py").read_text()
    assert "dtype=torch.float16" in text
    names = [i.name for i in onnx.load(path).graph.input]
    for seed, size in enumerate(sizes):
        feeds = make_feeds(path, size, seed=seed + 20)
        assert name == "bert" or all(f.dtype == np.float16 for f in feeds.values())
        ref = ort_file(path, feeds)[0]
        assert ref.dtype == np.float16
        for label, model in (("model.py", user), ("GraphModule", res.exported)):
            got = run_torch(model, feeds, [n for n in names if n in feeds])[0]
            assert got.dtype == np.float16, label
            try:
                assert_close(got.astype(np.float32), ref.astype(np.float32), **FP16)
            except AssertionError as e:
                raise AssertionError(f"{label} at {size}: {e}") from None


def test_half_layers_are_declared_in_float16(tmp_path):
    """The generated constructor names the dtype (`nn.Conv2d(..., dtype=torch.float16)`), so that
    `Model()` alone holds float16 parameters and buffers, before any weights are loaded."""
    import importlib.util

    from irbridge.models import dynamic_zoo

    import irbridge

    path = dynamic_zoo.export_onnx("vit", tmp_path / "vit.onnx", half=True)
    irbridge.convert(path, "torch", tmp_path / "out", check=False)
    spec = importlib.util.spec_from_file_location("half_vit_model", tmp_path / "out" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model()
    assert {t.dtype for t in model.state_dict().values() if t.is_floating_point()} == {torch.float16}
    assert isinstance(model.patch_Conv if hasattr(model, "patch_Conv") else model.patch, torch.nn.Conv2d)
