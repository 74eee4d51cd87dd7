"""The nine model-zoo networks the onnx package ships, with seeded random weights.

onnx/backend/test/data/light/*.onnx hold real architectures (AlexNet, VGG19, ResNet-50,
Inception v1/v2, DenseNet-121, SqueezeNet, ShuffleNet, ZFNet-512) whose weights are
ConstantOfShape fills. Constant weights make every channel alike and hide layout bugs, so
`light_model` replaces each fill with seeded random values scaled like He initialisation
(BatchNorm variances positive), keeping activations in a sane range through deep nets.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

NAMES = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
         "shufflenet", "squeezenet", "vgg19", "zfnet512"]


def light_path(name: str) -> str:
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"light_{name}.onnx")


def light_model(name: str, seed: int = 0) -> onnx.ModelProto:
    """The zoo model `name` with every ConstantOfShape weight replaced by a random initializer."""
    model = onnx.load(light_path(name))
    g = model.graph
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    role = _roles(g)
    kept, new_inits = [], []
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in inits[node.input[0]])
            new_inits.append(numpy_helper.from_array(_draw(rng, shape, role.get(node.output[0])), node.output[0]))
        else:
            kept.append(node)
    del g.node[:]
    g.node.extend(kept)
    used = {i for n in kept for i in n.input}
    keep_inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_inits + new_inits)
    init_names = set(inits) | {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]
    del g.input[:]
    g.input.extend(inputs)
    return model


def _roles(g) -> dict[str, str]:
    """What each weight feeds: 'kernel', 'bias', 'scale', 'mean', 'var', 'other'."""
    roles = {}
    for n in g.node:
        if n.op_type in ("Conv", "Gemm", "MatMul"):
            for i, r in zip(n.input[1:], ("kernel", "bias")):
                roles[i] = r
        elif n.op_type == "BatchNormalization":
            for i, r in zip(n.input[1:], ("scale", "bias", "mean", "var")):
                roles[i] = r
    return roles


def _draw(rng, shape, role) -> np.ndarray:
    if role == "kernel":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if len(shape) == 2:  # Gemm weights: transB layout [out, in] in these models
            fan_in = shape[1]
        return (rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32)
    if role == "var":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if role == "scale":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return (rng.standard_normal(shape) * 0.1).astype(np.float32)
