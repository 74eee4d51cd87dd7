"""Loss rows: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (`F.nll_loss`) with class
weights, ignore_index (also negative, also on a target) and every reduction, against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.exporters.torch_op_rows import Feed, check

rng = np.random.default_rng(9)
W = rng.uniform(0.2, 2.0, 5).astype(np.float32)


def target(*shape, ignore=None):
    t = rng.integers(0, 5, shape).astype(np.int64)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return Feed(t)


ROWS = [
    ("nll_mean", "NegativeLogLikelihoodLoss", {}, [(4, 5), target(4)], 1, 13),
    ("nll_none_weight_4d", "NegativeLogLikelihoodLoss", {"reduction": "none"}, [(2, 5, 3, 4), target(2, 3, 4), W], 1, 13),
    ("nll_sum_ignore", "NegativeLogLikelihoodLoss", {"reduction": "sum", "ignore_index": 2}, [(3, 5, 4), target(3, 4, ignore=2)], 1, 13),
    ("nll_mean_weight_negative_ignore", "NegativeLogLikelihoodLoss", {"ignore_index": -1},
     [(3, 5, 4), target(3, 4, ignore=-1), W], 1, 13),
    ("sce_mean_with_log_prob", "SoftmaxCrossEntropyLoss", {}, [(4, 5), target(4)], 2, 13),
    ("sce_none_weight_3d", "SoftmaxCrossEntropyLoss", {"reduction": "none"}, [(2, 5, 6), target(2, 6), W], 2, 13),
    ("sce_sum_ignore", "SoftmaxCrossEntropyLoss", {"reduction": "sum", "ignore_index": 4}, [(3, 5, 2, 2), target(3, 2, 2, ignore=4)], 1, 13),
    ("sce_mean_weight_ignore", "SoftmaxCrossEntropyLoss", {"ignore_index": 0}, [(6, 5), target(6, ignore=0), W], 2, 13),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_loss_matches_onnxruntime(row, torch):
    check(row, torch)
