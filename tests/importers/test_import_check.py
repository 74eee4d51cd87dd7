"""The PyTorch import check: the imported graph is run against the module itself at two sizes of
every free dim, and a graph that computes something else is refused (VerificationError)."""

from __future__ import annotations

import numpy as np
import pytest

import irbridge
from irbridge.errors import VerificationError

torch = pytest.importorskip("torch")


def test_the_import_is_checked_against_the_module_at_two_batch_sizes():
    from irbridge.models.torch_zoo import resnet_small

    model = irbridge.load(resnet_small(), inputs=(np.random.default_rng(0).standard_normal((1, 3, 32, 32)),))
    check = model.metadata_props["irbridge.import_check"]
    assert check.startswith("torch: ok") and "x=2x3x32x32; x=3x3x32x32" in check


class _Drifting(torch.nn.Module):
    """Python state the trace freezes: the graph scales by the count seen when it was traced."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x) * float(self.calls)


def test_a_graph_that_differs_from_the_module_is_refused():
    with pytest.raises(VerificationError) as e:
        irbridge.load(_Drifting(), inputs=(np.random.default_rng(0).standard_normal((2, 4)),))
    assert "differs from torch itself" in str(e.value)
