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
        out = call_freeing(km, xs if len(xs) > 1 else xs[0])
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


def call_freeing(km, inputs):
    """`km(inputs, training=False)` for a functional model, computed as Keras computes it (the
    same layers called in the same order with the same arguments) but letting go of each
    intermediate tensor once every layer reading it has run. Keras keeps them all until the
    call returns: ViT-B/16 at batch 3 held ~300 MB of activations at the end of an eager call.
    Falls back to `km(...)` where this Keras's functional internals are not the ones read here.
    """
    try:
        from keras.src.models.functional import operation_fn

        flat = km._standardize_inputs(inputs)
        by_depth = km._nodes_by_depth
        nodes = [n for depth in sorted(by_depth, reverse=True) for n in by_depth[depth]
                 if n.operation is not None and not n.is_input]
        model_inputs, model_outputs = list(km.inputs), list(km.outputs)
    except (ImportError, AttributeError, TypeError):
        return km(inputs, training=False)
    values = {id(x): y for x, y in zip(model_inputs, flat)}
    readers: dict[int, int] = {}
    for node in nodes:
        for t in node.input_tensors:
            readers[id(t)] = readers.get(id(t), 0) + 1
    for t in model_outputs:
        readers[id(t)] = readers.get(id(t), 0) + 1
    for node in nodes:
        if any(id(x) not in values for x in node.input_tensors):
            continue  # not computable from these inputs (Keras skips it too)
        args, kwargs = node.arguments.fill_in(values)
        outputs = operation_fn(node.operation, training=False)(*args, **kwargs)
        del args, kwargs
        for x, y in zip(node.outputs, _flatten(outputs)):
            values[id(x)] = y
        del outputs
        for t in node.input_tensors:
            readers[id(t)] -= 1
            if readers[id(t)] == 0:
                values.pop(id(t), None)
    out = [values[id(x)] for x in model_outputs]
    return out if len(out) > 1 else out[0]


def _flatten(outputs):
    from keras import tree

    return tree.flatten(outputs)
