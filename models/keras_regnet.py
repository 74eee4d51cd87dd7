"""RegNetX / RegNetY and ResNet-RS as Keras 3 functional models, written from their papers and
tf.keras 2.x's `keras.applications.regnet` / `resnet_rs` (Keras 3 ships neither, but users still
hold such models saved from older TF). Nothing is downloaded; weights are Keras's initializers
(re-draw them with `models.keras_apps.reseed`).

- RegNet (Radosavovic et al., "Designing Network Design Spaces", 2020): a stem (3x3 conv, 32
  filters, stride 2, BN, ReLU), four stages of blocks whose first block strides by 2, a head
  (global average pooling, Dense). The X block is a bottleneck of ratio 1: 1x1 conv, 3x3 group
  conv (groups = width / group width) with the stride, 1x1 conv, each with BN (and ReLU but the
  last), added to the input (through a strided 1x1 conv + BN where the block strides), ReLU. The
  Y block is the X block with squeeze-excite after the 3x3 conv (reduction to a quarter of the
  block's input width). BN momentum 0.9, epsilon 1e-5, convs without bias, TF 'same' padding.
- ResNet-RS (Bello et al., "Revisiting ResNets", 2021): ResNet-D stem of three 3x3 convs (32,
  32, 64 filters, the first strided) and a strided 3x3 conv in place of the max pool; bottleneck
  blocks (1x1, 3x3 with the stride, 1x1 to 4x the width, BN and ReLU) with squeeze-excite (on the
  4x output, reduced by the ratio 0.25 to the bottleneck width) and stochastic depth (a per-sample Dropout, the
  identity at inference); ResNet-D shortcuts (2x2 average pool, then a 1x1 conv, where the block
  strides). Strided convs pad as the reference does: fixed ZeroPadding2D of (k-1)//2 before and
  the rest after, then 'valid'. BN momentum 0.0, epsilon 1e-5. Head: global average pooling,
  Dropout 0.25, Dense.

Both start with tf.keras's preprocessing (Rescaling 1/255, ImageNet mean/std Normalization)
when `preprocessing=True`: they then take pixel values in [0, 255].

    regnet("RegNetY002", classes=10)                        # (None, None, None, 3) images
    resnet_rs(50, width=0.25, input_shape=(32, 32, 3))      # a narrow ResNet-RS-50
"""

from __future__ import annotations

# name -> per-stage depths, per-stage widths, group width, block type (tf.keras 2.x's configs)
REGNET: dict[str, dict] = {
    "RegNetX002": dict(depths=[1, 1, 4, 7], widths=[24, 56, 152, 368], group_width=8, block="X"),
    "RegNetY002": dict(depths=[1, 1, 4, 7], widths=[24, 56, 152, 368], group_width=8, block="Y"),
    "RegNetX004": dict(depths=[1, 2, 7, 12], widths=[32, 64, 160, 384], group_width=16, block="X"),
    "RegNetY004": dict(depths=[1, 3, 6, 6], widths=[48, 104, 208, 440], group_width=8, block="Y"),
}

# ResNet-RS depth -> bottleneck blocks per stage (stage widths 64, 128, 256, 512 times `width`)
RESNET_RS_BLOCKS: dict[int, list[int]] = {
    50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 24, 36, 3],
}

_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]


def _preprocess(x, name):
    from keras import layers

    x = layers.Rescaling(1.0 / 255.0, name=f"{name}_rescaling")(x)
    return layers.Normalization(mean=_IMAGENET_MEAN, variance=[s * s for s in _IMAGENET_STD],
                                name=f"{name}_normalization")(x)


# --- RegNet -----------------------------------------------------------------------------------

def _conv_bn(x, filters, kernel, name, strides=1, groups=1, relu=True):
    """Conv2D (no bias, TF 'same' padding) + BN (momentum 0.9, eps 1e-5) (+ ReLU)."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", groups=groups, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _squeeze_excite(x, squeezed, filters, name):
    """Global average -> 1x1 conv (ReLU) -> 1x1 conv (sigmoid) -> scales x's channels."""
    from keras import layers

    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(squeezed, 1, activation="relu", name=f"{name}_reduce")(s)
    s = layers.Conv2D(filters, 1, activation="sigmoid", name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_excite")([x, s])


def regnet_block(x, filters_in, filters_out, group_width, stride, squeeze_excite, name):
    """RegNet's X block (Y block with `squeeze_excite`): bottleneck ratio 1, group 3x3 conv."""
    from keras import layers

    if stride == 1 and filters_in != filters_out:
        raise ValueError(f"{name}: a block that keeps the size keeps the width")
    skip = x if stride == 1 else _conv_bn(x, filters_out, 1, f"{name}_skip", strides=stride, relu=False)
    y = _conv_bn(x, filters_out, 1, f"{name}_1x1a")
    y = _conv_bn(y, filters_out, 3, f"{name}_3x3", strides=stride, groups=filters_out // group_width)
    if squeeze_excite:
        y = _squeeze_excite(y, int(filters_in * 0.25), filters_out, f"{name}_se")
    y = _conv_bn(y, filters_out, 1, f"{name}_1x1b", relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, skip]))


def regnet(config: str = "RegNetX002", input_shape=(None, None, 3), classes: int = 1000,
           preprocessing: bool = True):
    """The RegNet `config` (a key of REGNET) with its classifier head (logits, no softmax)."""
    import keras
    from keras import layers

    spec = REGNET[config]
    prefix = config.lower()
    inp = keras.Input(input_shape, name="image")
    x = _preprocess(inp, prefix) if preprocessing else inp
    x = _conv_bn(x, 32, 3, f"{prefix}_stem", strides=2)
    width = 32
    for s, (depth, out) in enumerate(zip(spec["depths"], spec["widths"])):
        for b in range(depth):
            x = regnet_block(x, width, out, spec["group_width"], 2 if b == 0 else 1, spec["block"] == "Y",
                             f"{prefix}_stage{s}_block{b}")
            width = out
    x = layers.GlobalAveragePooling2D(name=f"{prefix}_head_gap")(x)
    out = layers.Dense(classes, name=f"{prefix}_head_dense")(x)
    return keras.Model(inp, out, name=prefix)


# --- ResNet-RS --------------------------------------------------------------------------------

def _conv_fixed(x, filters, kernel, strides, name):
    """ResNet-RS's Conv2DFixedPadding: strided convs pad (k-1)//2 before and the rest after
    (ZeroPadding2D, 'valid'), unstrided ones are 'same'."""
    from keras import layers

    if strides > 1:
        before = (kernel - 1) // 2
        x = layers.ZeroPadding2D(((before, kernel - 1 - before),) * 2, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, strides=strides, padding="same" if strides == 1 else "valid",
                         use_bias=False, name=name)(x)


def _bn_relu(x, name, relu=True):
    from keras import layers

    x = layers.BatchNormalization(momentum=0.0, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def resnet_rs_block(x, filters, strides, projection, survival, name):
    """ResNet-RS bottleneck: 1x1, 3x3 (stride), 1x1 to 4*filters, squeeze-excite, stochastic
    depth, ResNet-D projection shortcut (average pool before the 1x1 conv when strided)."""
    from keras import layers

    shortcut = x
    if projection:
        if strides == 2:
            shortcut = layers.AveragePooling2D(2, 2, padding="same", name=f"{name}_shortcut_pool")(x)
        shortcut = _bn_relu(_conv_fixed(shortcut, 4 * filters, 1, 1, f"{name}_shortcut_conv"),
                            f"{name}_shortcut", relu=False)
    y = _bn_relu(_conv_fixed(x, filters, 1, 1, f"{name}_conv1"), f"{name}_conv1")
    y = _bn_relu(_conv_fixed(y, filters, 3, strides, f"{name}_conv2"), f"{name}_conv2")
    y = _bn_relu(_conv_fixed(y, 4 * filters, 1, 1, f"{name}_conv3"), f"{name}_conv3", relu=False)
    y = _squeeze_excite(y, max(1, int(4 * filters * 0.25)), 4 * filters, f"{name}_se")
    if survival < 1.0:  # stochastic depth: drop the residual per sample while training
        y = layers.Dropout(1.0 - survival, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def resnet_rs(depth: int = 50, width: float = 1.0, input_shape=(None, None, 3), classes: int = 1000,
              preprocessing: bool = True, survival: float = 0.8):
    """ResNet-RS-`depth` (a key of RESNET_RS_BLOCKS); `width` scales every layer's filters
    (1.0 as published; smaller for quick tests). Stochastic depth falls linearly to `survival`
    at the last block."""
    import keras
    from keras import layers

    blocks = RESNET_RS_BLOCKS[depth]
    prefix = f"resnetrs{depth}"
    w = lambda n: max(8, int(round(n * width)))  # noqa: E731
    inp = keras.Input(input_shape, name="image")
    x = _preprocess(inp, prefix) if preprocessing else inp
    for k, (filters, strides) in enumerate(((32, 2), (32, 1), (64, 1), (64, 2))):  # the last replaces max pool
        x = _bn_relu(_conv_fixed(x, w(filters), 3, strides, f"{prefix}_stem_conv{k + 1}"), f"{prefix}_stem{k + 1}")
    total, index = sum(blocks), 0
    for s, repeats in enumerate(blocks):
        for b in range(repeats):
            index += 1
            keep = 1.0 - (1.0 - survival) * index / total
            x = resnet_rs_block(x, w(64 * 2 ** s), 2 if b == 0 and s > 0 else 1, b == 0, keep,
                                f"{prefix}_stage{s}_block{b}")
    x = layers.GlobalAveragePooling2D(name=f"{prefix}_head_gap")(x)
    x = layers.Dropout(0.25, name=f"{prefix}_head_dropout")(x)
    out = layers.Dense(classes, name=f"{prefix}_head_dense")(x)
    return keras.Model(inp, out, name=prefix)
