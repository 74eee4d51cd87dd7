"""The classics of irbridge.models.torch_classics written by hand in Keras (channels-last): the
hand-written speed references for irbridge's Keras exports.

Same architectures as torchvision's (ResNet-50 v1.5: stride on the 3x3 conv; convs without bias;
BatchNorm eps 1e-5; PyTorch's symmetric padding as ZeroPadding2D + 'valid'), so their parameter
counts equal the PyTorch ones. Layers are named after torchvision's modules (`layer1_0_conv1` for
`layer1.0.conv1`), so `irbridge.bind` pairs a PyTorch state_dict with them by name. Weights are
Keras's seeded initialization; they do not matter for speed. `classic(name, batch)` builds the
model for a fixed batch, as irbridge's exports are.
"""

from __future__ import annotations

import keras
from keras import layers

EPS = 1e-5


def _conv(x, filters, k, stride=1, pad=0, bias=False, name=None):
    if pad:
        x = layers.ZeroPadding2D(pad)(x)
    return layers.Conv2D(filters, k, stride, use_bias=bias, name=name)(x)


def _bn(x, name: str, relu: float | None = None):
    x = layers.BatchNormalization(epsilon=EPS, name=name)(x)
    if relu is not None:
        x = layers.ReLU(max_value=relu or None)(x)
    return x


def vgg16(x):
    index = 0  # torchvision's features.N: conv, relu (, pool)
    for width, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            x = layers.ReLU()(_conv(x, width, 3, pad=1, bias=True, name=f"features_{index}"))
            index += 2
        x = layers.MaxPooling2D(2)(x)
        index += 1
    x = layers.Flatten()(x)
    for index in (0, 3):
        x = layers.Dense(4096, activation="relu", name=f"classifier_{index}")(x)
        x = layers.Dropout(0.5)(x)
    return layers.Dense(1000, name="classifier_6")(x)


def resnet50(x):
    x = _bn(_conv(x, 64, 7, 2, pad=3, name="conv1"), "bn1", relu=0)
    x = layers.MaxPooling2D(3, 2)(layers.ZeroPadding2D(1)(x))  # after a ReLU: zeros pad as -inf would
    cin = 64
    for stage, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
        for i in range(blocks):
            s, at = (stride if i == 0 else 1), f"layer{stage}_{i}_"
            y = _bn(_conv(x, width, 1, name=at + "conv1"), at + "bn1", relu=0)
            y = _bn(_conv(y, width, 3, s, pad=1, name=at + "conv2"), at + "bn2", relu=0)
            y = _bn(_conv(y, width * 4, 1, name=at + "conv3"), at + "bn3")
            shortcut = x
            if s != 1 or cin != width * 4:
                shortcut = _bn(_conv(x, width * 4, 1, s, name=at + "downsample_0"), at + "downsample_1")
            x = layers.ReLU()(layers.Add()([y, shortcut]))
            cin = width * 4
    return layers.Dense(1000, name="fc")(layers.GlobalAveragePooling2D()(x))


def mobilenet_v2(x):
    x = _bn(_conv(x, 32, 3, 2, pad=1, name="features_0_0"), "features_0_1", relu=6)
    cin, block = 32, 1
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride, at, j = (s if i == 0 else 1), f"features_{block}_conv_", 0
            y = x
            if t != 1:
                y = _bn(_conv(x, cin * t, 1, name=f"{at}0_0"), f"{at}0_1", relu=6)
                j = 1
            y = layers.ZeroPadding2D(1)(y)
            y = layers.DepthwiseConv2D(3, stride, use_bias=False, name=f"{at}{j}_0")(y)
            y = _bn(y, f"{at}{j}_1", relu=6)
            y = _bn(_conv(y, c, 1, name=f"{at}{j + 1}"), f"{at}{j + 2}")
            x = layers.Add()([x, y]) if stride == 1 and cin == c else y
            cin, block = c, block + 1
    x = _bn(_conv(x, 1280, 1, name=f"features_{block}_0"), f"features_{block}_1", relu=6)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(1000, name="classifier_1")(layers.Dropout(0.2)(x))


BUILDERS = {"vgg16": vgg16, "resnet50": resnet50, "mobilenet_v2": mobilenet_v2}


def classic(name: str, batch: int = 1, size: int = 224, seed: int = 0) -> keras.Model:
    """The named network (vgg16, resnet50, mobilenet_v2) for NHWC inputs (batch, size, size, 3)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), batch_size=batch, name="x")
    return keras.Model(inputs, BUILDERS[name](inputs), name=name)
