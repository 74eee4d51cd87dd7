"""Pass machinery: registry, default pipeline, metadata, dumps; each pass keeps the outputs."""

from __future__ import annotations

import onnx
import pytest
from irbridge.models import onnx_zoo

import irbridge
from irbridge import passes
from tests.conftest import assert_close, ort_run, seeded


def test_every_pass_is_an_inplace_pass_with_a_description():
    import onnx_ir as ir

    passes._load_all()
    assert set(passes.DEFAULT_PIPELINE) <= set(passes.REGISTRY)
    for spec in passes.REGISTRY.values():
        assert isinstance(spec.factory(), ir.passes.InPlacePass), spec.name
        assert spec.description, spec.name


@pytest.mark.parametrize("name", ["inception_v1", "shufflenet"])
def test_each_default_pass_keeps_the_outputs(name):
    model = onnx_zoo.light_model(name, seed=3)
    feeds = {model.graph.input[0].name: seeded((1, 3, 224, 224))}
    ref = ort_run(model, feeds)[0]
    m = irbridge.load(model)
    for step in passes.DEFAULT_PIPELINE:
        passes.run(m, [step])
        assert_close(ort_run(m, feeds)[0], ref)
    assert m.metadata_props["irbridge.passes"] == ",".join(passes.DEFAULT_PIPELINE)


def test_fold_constants_materialises_constant_weight_fills():
    m = irbridge.normalize(irbridge.load(onnx_zoo.light_path("vgg19")))
    assert not [n for n in m.graph if n.op_type == "ConstantOfShape"]
    assert len(m.graph.initializers) >= 38


def test_dump_ir_writes_one_file_per_step(tmp_path):
    m = irbridge.load(onnx_zoo.light_model("squeezenet"))
    irbridge.normalize(m, dump_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "00-imported.onnx"
    assert files[1:] == [f"{i:02d}-{n}.onnx" for i, n in enumerate(passes.DEFAULT_PIPELINE, 1)]
    for f in tmp_path.iterdir():
        onnx.checker.check_model(str(f))


def test_normalize_does_not_mutate_its_input():
    m = irbridge.load(onnx_zoo.light_model("squeezenet"))
    n_before = len(list(m.graph))
    irbridge.normalize(m)
    assert len(list(m.graph)) == n_before
    assert "irbridge.passes" not in m.metadata_props


def test_unknown_pass_names_the_known_ones():
    with pytest.raises(irbridge.InputError, match="fold-constants"):
        passes.get("no-such-pass")
