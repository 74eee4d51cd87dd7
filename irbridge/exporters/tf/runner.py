"""verify's runner over the frozen TF module made by this exporter (registered in __init__)."""

from __future__ import annotations

import numpy as np

from ...verify.runners import Runner


def accepts(obj) -> bool:
    return hasattr(obj, "irbridge_info") and hasattr(obj, "serving_default")


def tf_runner(module) -> Runner:
    """Feeds laid out channels-last and, when the module bakes in Caffe preprocessing, turned
    into the raw RGB images that give them."""
    meta = module.irbridge_info
    mean = None if module._mean is None else module._mean.numpy()

    def run(feeds):
        xs = []
        for n, p in meta["inputs"]:
            x = np.ascontiguousarray(feeds[n].transpose(p))
            if mean is not None:
                x = np.ascontiguousarray((x + mean)[..., ::-1])  # preprocess(raw) == x
            xs.append(x)
        out = module.serving_default(*xs)
        return {n: np.asarray(out[n]).transpose(np.argsort(p)) for n, p in meta["outputs"]}

    return Runner([n for n, _ in meta["inputs"]], [n for n, _ in meta["outputs"]], run)
