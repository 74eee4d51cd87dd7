"""Legacy .h5 importer: refusals (unknown and Lambda layers all listed, external links,
weights-only files) and provenance."""

from __future__ import annotations

import json

import pytest
from irbridge.models.legacy_h5 import write_vgg_style

h5py = pytest.importorskip("h5py")


def test_provenance_and_layout_marks(tmp_path):
    import irbridge

    path = tmp_path / "m.h5"
    write_vgg_style(path, 1, "th", "theano")
    m = irbridge.load(path)
    assert m.metadata_props["irbridge.source_format"] == "keras-h5"
    assert m.graph.initializers["conv1_1/kernel"].metadata_props["irbridge.layout"] == "OIHW+flip"
    assert {(n.metadata_props["irbridge.source"], n.metadata_props["irbridge.source_op"]) for n in m.graph} >= {
        ("conv1_1", "Convolution2D"), ("dense_1", "Dense"), ("flatten_1", "Flatten")}


def test_unknown_and_lambda_layers_are_all_listed(tmp_path):
    import irbridge

    path = tmp_path / "m.h5"
    write_vgg_style(path, 1, "th", "theano")
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"].insert(3, {"class_name": "Lambda", "config": {"name": "evil", "function": "..."}})
        config["config"].insert(5, {"class_name": "SpatialDropout2D", "config": {"name": "sd"}})
        f.attrs["model_config"] = json.dumps(config).encode()
    with pytest.raises(irbridge.UnsupportedError) as e:
        irbridge.load(path)
    assert e.value.nodes == ["evil", "sd"] and "Python code" in e.value.message


def test_external_links_and_weights_only_files_are_refused(tmp_path):
    import irbridge

    path = tmp_path / "m.h5"
    write_vgg_style(path, 2, "tf", "tensorflow")
    with h5py.File(path, "r+") as f:
        f["model_weights/conv1_1/sneaky"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(irbridge.InputError, match="external link"):
        irbridge.load(path)
    weights_only = tmp_path / "w.h5"
    with h5py.File(weights_only, "w") as f:
        f.create_group("conv1").attrs["weight_names"] = []
    with pytest.raises(irbridge.InputError, match="irbridge bind"):
        irbridge.load(weights_only)
