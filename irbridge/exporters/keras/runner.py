"""verify's runner over a Keras model made by this exporter (registered in __init__)."""

from __future__ import annotations

import numpy as np

from ...verify.runners import Runner


def accepts(obj) -> bool:
    if type(obj).__module__.split(".")[0] != "keras":
        return False
    from . import info

    return info(obj) is not None


def runner(km) -> Runner:
    from . import info

    return keras_runner(km, info(km))


def keras_runner(km, meta: dict) -> Runner:
    """Canonical (NCHW) feeds are laid out as the model holds its inputs, and outputs are
    brought back to the ONNX order."""
    names_in = [n for n, _ in meta["inputs"]]
    names_out = [n for n, _ in meta["outputs"]]

    def run(feeds):
        xs = [np.ascontiguousarray(feeds[n].transpose(p)) for n, p in meta["inputs"]]
        out = km(xs if len(xs) > 1 else xs[0], training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        return {n: np.asarray(o).transpose(np.argsort(p)) for (n, p), o in zip(meta["outputs"], out)}

    def values(feeds, reference=None):
        import keras

        names = [n for n in meta["values"] if n not in names_in]
        probe = keras.Model(km.inputs, [meta["values"][n][0] for n in names])
        xs = [np.ascontiguousarray(feeds[n].transpose(p)) for n, p in meta["inputs"]]
        outs = probe(xs if len(xs) > 1 else xs[0], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return {n: np.asarray(o).transpose(np.argsort(meta["values"][n][1])) for n, o in zip(names, outs)}

    return Runner(names_in, names_out, run, None, values, meta["layers"])
