"""Legacy Keras .h5 files written with h5py, following the Keras 1 and Keras 2 file layouts
(seed 002's setting: a Theano-ordered VGG-style network with a Dense after a Flatten).

`write_vgg_style(path, keras=1, ordering="th", backend="theano")` writes the file and returns
the stored weights, so a test can compute a reference from the definitions.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

SIZE, CLASSES = 16, 10


def _layers(keras: int, ordering: str):
    first = ordering == "th"
    shape = [None, 3, SIZE, SIZE] if first else [None, SIZE, SIZE, 3]
    if keras == 1:
        order = {"dim_ordering": ordering}
        conv = lambda name, n, mode, **kw: ("Convolution2D", {"name": name, "nb_filter": n, "nb_row": 3, "nb_col": 3,  # noqa: E731
                                                              "border_mode": mode, "subsample": [1, 1],
                                                              "activation": "relu", "bias": True, **order, **kw})
        pool = lambda name: ("MaxPooling2D", {"name": name, "pool_size": [2, 2], "strides": [2, 2],  # noqa: E731
                                              "border_mode": "valid", **order})
        dense = lambda name, n, act: ("Dense", {"name": name, "output_dim": n, "activation": act, "bias": True})  # noqa: E731
        drop = ("Dropout", {"name": "dropout_1", "p": 0.5})
        pad = ("ZeroPadding2D", {"name": "zeropadding2d_1", "padding": [1, 1], **order,
                                 "batch_input_shape": shape})
    else:
        order = {"data_format": "channels_first" if first else "channels_last"}
        conv = lambda name, n, mode, **kw: ("Conv2D", {"name": name, "filters": n, "kernel_size": [3, 3],  # noqa: E731
                                                       "strides": [1, 1], "padding": mode, "activation": "relu",
                                                       "use_bias": True, **order, **kw})
        pool = lambda name: ("MaxPooling2D", {"name": name, "pool_size": [2, 2], "strides": [2, 2],  # noqa: E731
                                              "padding": "valid", **order})
        dense = lambda name, n, act: ("Dense", {"name": name, "units": n, "activation": act, "use_bias": True})  # noqa: E731
        drop = ("Dropout", {"name": "dropout_1", "rate": 0.5})
        pad = ("ZeroPadding2D", {"name": "zeropadding2d_1", "padding": [[1, 1], [1, 1]], **order,
                                 "batch_input_shape": shape})
    return [pad, conv("conv1_1", 8, "valid"), conv("conv1_2", 8, "same"), pool("pool1"),
            conv("conv2_1", 16, "same"), pool("pool2"), ("Flatten", {"name": "flatten_1"}),
            dense("dense_1", 32, "relu"), drop, dense("dense_2", CLASSES, "softmax")]


def write_vgg_style(path, keras: int = 1, ordering: str = "th", backend: str = "theano",
                    seed: int = 0, weights_only: bool = False) -> dict[str, list[np.ndarray]]:
    """Write the network; return {layer: [kernel, bias]} exactly as stored in the file.
    `weights_only`: the layout of Keras's `save_weights` (layer groups at the root, no config)."""
    rng = np.random.default_rng(seed)
    layers = _layers(keras, ordering)
    first = ordering == "th"
    weights, cin, size = {}, 3, SIZE
    for cls, c in layers:
        if cls in ("Convolution2D", "Conv2D"):
            n = c.get("nb_filter", c.get("filters"))
            scale = np.sqrt(2 / (9 * cin))
            if keras == 1 and first:
                k = rng.standard_normal((n, cin, 3, 3)) * scale  # th: (out, in, rows, cols)
            else:
                k = rng.standard_normal((3, 3, cin, n)) * scale  # tf, and all Keras 2: (rows, cols, in, out)
            weights[c["name"]] = [k.astype(np.float32), (rng.standard_normal(n) * 0.1).astype(np.float32)]
            cin = n
        elif cls == "MaxPooling2D":
            size //= 2
        elif cls == "Dense":
            n = c.get("output_dim", c.get("units"))
            n_in = cin * size * size if "dense_1" == c["name"] else 32
            weights[c["name"]] = [(rng.standard_normal((n_in, n)) * np.sqrt(2 / n_in)).astype(np.float32),
                                  (rng.standard_normal(n) * 0.1).astype(np.float32)]
    if keras == 1:
        config = {"class_name": "Sequential", "config": [{"class_name": k, "config": c} for k, c in layers]}
    else:
        config = {"class_name": "Sequential",
                  "config": {"name": "sequential_1", "layers": [{"class_name": k, "config": c} for k, c in layers]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "1.2.2" if keras == 1 else "2.2.4"
        f.attrs["backend"] = backend
        if weights_only:
            g = f
        else:
            f.attrs["model_config"] = json.dumps(config).encode()
            g = f.create_group("model_weights")
        g.attrs["layer_names"] = [c["name"].encode() for _, c in layers]
        for _, c in layers:
            lg = g.create_group(c["name"])
            ws = weights.get(c["name"], [])
            if keras == 1:
                names = [f"{c['name']}_{s}" for s in ("W", "b")][: len(ws)]
            else:
                names = [f"{c['name']}/{s}:0" for s in ("kernel", "bias")][: len(ws)]
            lg.attrs["weight_names"] = [n.encode() for n in names]
            for n, w in zip(names, ws):
                lg.create_dataset(n, data=w)
    return weights


def vgg_style_keras():
    """The same network as a Keras 3 user writes it today: channels_last, the file's layer names
    (random weights): what a Theano-era weights file is bound onto."""
    import keras

    x = inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.ZeroPadding2D(1, name="zeropadding2d_1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1_1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1_2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2_1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten_1")(x)
    x = keras.layers.Dense(32, activation="relu", name="dense_1")(x)
    x = keras.layers.Dropout(0.5, name="dropout_1")(x)
    x = keras.layers.Dense(CLASSES, activation="softmax", name="dense_2")(x)
    return keras.Model(inp, x)
