"""The tf.Module the TF exporter saves: non-trainable weights, outputs and layer outputs by name."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class FrozenModule(tf.Module):
    """A Keras model built with non-trainable layers, served through two signatures.

    Its variables are created `trainable=False`, so a GradientTape never watches them and an
    optimizer never receives them; they are restored from the SavedModel on load, so no
    session or initializer can reset them. `weights` lists them for inspection.
    """

    def __init__(self, km, mean_bgr=None):
        super().__init__(name="irbridge_model")
        import keras

        from ..keras import info

        self.irbridge_info = info(km)
        self.output_names = [n for n, _ in self.irbridge_info["outputs"]]
        outs = km.outputs if isinstance(km.outputs, (list, tuple)) else [km.outputs]
        self.layer_names, layer_outs = [], []
        for layer in km.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            out = layer.output
            many = isinstance(out, (list, tuple))  # a layer with several outputs: name:0, name:1, ...
            for k, t in enumerate(out if many else [out]):
                self.layer_names.append(f"{layer.name}:{k}" if many else layer.name)
                layer_outs.append(t)
        self._everything = keras.Model(km.inputs, list(outs) + layer_outs)
        self.weights = [_freeze(w) for w in km.weights]
        specs = [tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=t.name) for t in km.inputs]
        self._mean = None if mean_bgr is None else tf.constant(np.asarray(mean_bgr, np.float32))
        self.serving_default = tf.function(self._serve, input_signature=specs)
        self.layers = tf.function(self._layers, input_signature=specs)

    def _run(self, xs):
        xs = list(xs)
        if self._mean is not None:  # RGB -> BGR, minus the ImageNet BGR mean
            xs = [tf.reverse(x, axis=[-1]) - self._mean for x in xs]
        out = self._everything(xs, training=False)
        return out if isinstance(out, (list, tuple)) else [out]

    def _serve(self, *xs):
        out = self._run(xs)
        return {name: out[i] for i, name in enumerate(self.output_names)}

    def _layers(self, *xs):
        return dict(zip(self.layer_names, self._run(xs)[len(self.output_names):]))

    def __call__(self, *xs):
        return self.serving_default(*xs)

    def signatures(self) -> dict:
        return {"serving_default": self.serving_default, "layers": self.layers}


def _freeze(w) -> tf.Variable:
    """Back a Keras variable by a tf.Variable created trainable=False.

    Keras 3 creates its TF variables trainable whatever the layer says; a SavedModel would
    restore them trainable, and a user collecting trainable variables would train them.
    """
    value = w.value
    if value.trainable:
        value = tf.Variable(value, trainable=False, name=value.name.split(":")[0])
        w._value = value  # Keras reads its variable through `_value`
    return value
