"""Seed 000's setting: a vgg16.npy-style weight dict and the TF network that reads it.

The classic `vgg16.npy` maps layer names to `[kernel, bias]`: conv kernels HWIO, fc weights
[in, out] with fc6's 25088 rows in TF's NHWC flatten order. `vgg16_weights` makes such a dict
with seeded He-scaled values; `vgg16_graph` writes, literally as an importer would, the TF
graph of seed 000 that uses it (NHWC input, `tf.nn.conv2d` + `bias_add` + `relu` blocks,
max pools, flatten, fc layers as MatMul + Add).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


def vgg16_weights(seed: int = 0, width: float = 1.0, classes: int = 1000, fc: int = 4096) -> dict:
    """{name: [W, b]} like vgg16.npy. `width` scales the channel counts (1.0: the real VGG16)."""
    rng = np.random.default_rng(seed)
    weights, cin = {}, 3
    for b, block in enumerate(BLOCKS, 1):
        for i, cout in enumerate(block, 1):
            cout = max(1, int(cout * width))
            k = rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * np.float32(np.sqrt(2 / (9 * cin)))
            weights[f"conv{b}_{i}"] = [k, (rng.standard_normal(cout, dtype=np.float32) * 0.1)]
            cin = cout
    n_in = 7 * 7 * cin
    for name, (i, o) in {"fc6": (n_in, fc), "fc7": (fc, fc), "fc8": (fc, classes)}.items():
        w = rng.standard_normal((i, o), dtype=np.float32) * np.float32(np.sqrt(2 / i))
        weights[name] = [w, rng.standard_normal(o, dtype=np.float32) * 0.1]
    return weights


def vgg16_graph(weights: dict, batch: int = 1) -> onnx.ModelProto:
    """The dense VGG16 of seed 000 over `weights`, kernels kept HWIO behind Transposes."""
    nodes, inits = [], []

    def init(name, array):
        t = numpy_helper.from_array(np.ascontiguousarray(array), name)
        inits.append(t)
        return name

    nodes.append(helper.make_node("Transpose", ["images"], ["x0"], perm=[0, 3, 1, 2], name="to_nchw"))
    x = "x0"
    for b, block in enumerate(BLOCKS, 1):
        for i in range(1, len(block) + 1):
            name = f"conv{b}_{i}"
            kernel, bias = weights[name]
            init(f"{name}/filter", kernel)
            init(f"{name}/biases", bias)
            nodes += [
                helper.make_node("Transpose", [f"{name}/filter"], [f"{name}/oihw"], perm=[3, 2, 0, 1], name=f"{name}/kernel_layout"),
                helper.make_node("Conv", [x, f"{name}/oihw", f"{name}/biases"], [f"{name}/conv"], pads=[1, 1, 1, 1], name=name),
                helper.make_node("Relu", [f"{name}/conv"], [name], name=f"{name}/relu"),
            ]
            x = name
        nodes.append(helper.make_node("MaxPool", [x], [f"pool{b}"], kernel_shape=[2, 2], strides=[2, 2], name=f"pool{b}"))
        x = f"pool{b}"
    init("flat_shape", np.array([batch, -1], np.int64))
    nodes += [helper.make_node("Transpose", [x], ["pool5_nhwc"], perm=[0, 2, 3, 1], name="flatten_order"),
              helper.make_node("Reshape", ["pool5_nhwc", "flat_shape"], ["flat"], name="flatten")]
    x = "flat"
    for name in ("fc6", "fc7", "fc8"):
        w, bias = weights[name]
        init(f"{name}/weights", w)
        init(f"{name}/biases", bias)
        nodes += [helper.make_node("MatMul", [x, f"{name}/weights"], [f"{name}/mm"], name=f"{name}/matmul"),
                  helper.make_node("Add", [f"{name}/mm", f"{name}/biases"], [name], name=name)]
        x = name
        if name != "fc8":
            nodes.append(helper.make_node("Relu", [name], [f"{name}/relu"], name=f"{name}/relu"))
            x = f"{name}/relu"
    nodes.append(helper.make_node("Softmax", [x], ["prob"], axis=1, name="prob"))
    graph = helper.make_graph(
        nodes, "vgg16", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 224, 224, 3])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def mark_layouts(model) -> None:
    """Mark the HWIO kernels of an imported vgg16_graph, as a weight-dict importer does."""
    for name, v in model.graph.initializers.items():
        if name.endswith("/filter"):
            v.metadata_props["irbridge.layout"] = "HWIO"


def _widths(width: float):
    return [[max(1, int(c * width)) for c in block] for block in BLOCKS]


def vgg16_keras(width: float = 1.0, fc: int = 4096, classes: int = 1000, size: int = 224):
    """VGG16 as a Keras user writes it (keras.applications' layer names, channels_last, random
    weights): the architecture a vgg16.npy dict is bound onto."""
    import keras

    x = inp = keras.Input((size, size, 3), name="images")
    for b, block in enumerate(_widths(width), 1):
        for i, c in enumerate(block, 1):
            x = keras.layers.Conv2D(c, 3, padding="same", activation="relu", name=f"block{b}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, 2, name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(fc, activation="relu", name="fc2")(x)
    x = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, x, name="vgg16")


def vgg16_torch(width: float = 1.0, fc: int = 4096, classes: int = 1000):
    """VGG16 as torchvision writes it (features.N / classifier.N, NCHW, random weights)."""
    import torch.nn as nn

    layers, cin = [], 3
    for block in _widths(width):
        for c in block:
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
            cin = c
        layers.append(nn.MaxPool2d(2, 2))
    classifier = [nn.Linear(cin * 49, fc), nn.ReLU(), nn.Dropout(), nn.Linear(fc, fc), nn.ReLU(), nn.Dropout(),
                  nn.Linear(fc, classes), nn.Softmax(dim=1)]

    class VGG16(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(*classifier)

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    return VGG16().eval()
