"""The hand-written classics (benchmarks' sources) have torchvision's exact sizes, and convert."""

from __future__ import annotations

import pytest

# torchvision's published parameter counts
PARAMS = {"vgg16": 138_357_544, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872}


@pytest.mark.parametrize("name", list(PARAMS))
def test_sizes_match_torchvision(name, torch):
    from irbridge.models.torch_classics import CLASSICS

    net = CLASSICS[name]()
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]


@pytest.mark.slow
def test_mobilenet_v2_converts_to_pytorch_and_back(tmp_path, torch):
    from irbridge.models.torch_classics import classic

    import irbridge

    res = irbridge.convert(classic("mobilenet_v2"), "torch", tmp_path / "m", inputs={"x": (1, 3, 224, 224)})
    assert res.report.ok
