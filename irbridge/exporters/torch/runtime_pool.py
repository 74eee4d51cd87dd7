"""AveragePool with auto_pad SAME and count_include_pad=0 at a spatial size known only at run
time (TF's AvgPool padding='SAME', e.g. Keras's InceptionV3 with free image sides). Copied into
model.py when used."""

from __future__ import annotations

import torch.nn.functional as F

from .runtime import avg_pool_exclude_pad, same_pads


def avg_pool_same_exclude_pad(x, kernel, stride, upper=True, ceil_mode=False):
    """ONNX AveragePool auto_pad=SAME_UPPER/SAME_LOWER, count_include_pad=0: pads from x's live
    shape; each output divided by the number of input elements its window covers. Symmetric pads
    that torch takes go to F.avg_pool*d(count_include_pad=False) (the same divisor); uneven ones
    (the extra pad at the end for SAME_UPPER, at the start for SAME_LOWER) to a padded pool
    divided by the pooled ones map of x's size."""
    n = len(kernel)
    pads = same_pads(x.shape[2:], kernel, stride, [1] * n, upper)
    begins, ends = pads[:n], pads[n:]
    if begins == ends and all(p <= k // 2 for p, k in zip(begins, kernel)):
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[n - 1]
        return pool(x, kernel, stride, padding=begins, ceil_mode=ceil_mode, count_include_pad=False)
    return avg_pool_exclude_pad(x, kernel, stride, pads, ceil_mode)
