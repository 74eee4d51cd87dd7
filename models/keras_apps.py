"""keras.applications families and keras-hub backbones at small sizes, with seeded weights.

Nothing is downloaded: applications are built with `weights=None`, keras-hub backbones from
their constructor arguments (no presets). Every weight is then re-drawn from a seeded
generator, so the numbers mean something (Keras's own init leaves BatchNorm at the identity
and LayerScale at 1e-6, which hides errors): kernels ~ N(0, 1/fan_in), BatchNorm/Normalization
statistics realistic (variances in [0.5, 1.5], means small), scales in [0.5, 1.5].

    app("EfficientNetB0", size=32)           # a keras.Model taking (None, 32, 32, 3)
    app("ResNet50", size=None)               # free image sides: (None, None, None, 3)
    hub("BertBackbone")                      # 2 layers, hidden 32, vocabulary 100
    hub_inputs("BertBackbone", batch=2, seq=8, seed=0)   # {name: array} for it
"""

from __future__ import annotations

import numpy as np

# family -> (constructor name in keras.applications, smallest side it accepts, free sides allowed,
#            extra keyword arguments). Sizes are the smallest the architecture takes, to keep the
#            tests quick; `free` is False where the head needs a fixed size (VGG's Flatten, NASNet's
#            fixed cell shapes). Keras 3 ships no ResNetRS or RegNet (tf.keras 2 did): not here.
APPS: dict[str, tuple[str, int, bool, dict]] = {
    "VGG16": ("VGG16", 32, False, {}),
    "VGG19": ("VGG19", 32, False, {}),
    "ResNet50": ("ResNet50", 32, True, {}),
    "ResNet50V2": ("ResNet50V2", 32, True, {}),
    "InceptionV3": ("InceptionV3", 75, True, {}),
    "InceptionResNetV2": ("InceptionResNetV2", 75, True, {}),
    "Xception": ("Xception", 71, True, {}),
    "MobileNet": ("MobileNet", 32, True, {"alpha": 0.25}),
    "MobileNetV2": ("MobileNetV2", 32, True, {"alpha": 0.35}),
    "MobileNetV3Small": ("MobileNetV3Small", 32, True, {"alpha": 0.75}),
    "MobileNetV3Large": ("MobileNetV3Large", 32, True, {"alpha": 0.75}),
    "DenseNet121": ("DenseNet121", 32, True, {}),
    "NASNetMobile": ("NASNetMobile", 32, False, {}),
    "EfficientNetB0": ("EfficientNetB0", 32, True, {}),
    "EfficientNetV2B0": ("EfficientNetV2B0", 32, True, {}),
    "ConvNeXtTiny": ("ConvNeXtTiny", 32, True, {}),
}

# families with a built-in preprocessing block (Rescaling / Normalization) that can be turned off
PREPROCESSING = {"MobileNetV3Small", "MobileNetV3Large", "EfficientNetV2B0", "ConvNeXtTiny"}


def app(family: str, size: int | None = None, preprocessing: bool = True, free: bool = False,
        classes: int = 10, seed: int = 0):
    """keras.applications `family` with weights=None and seeded weights, taking
    (None, size, size, 3) images (default: its smallest side) through its classifier head.
    `free=True`: free image sides (None, None, None, 3), without the head (include_top=False,
    global average pooling: Keras wants a static shape under the head), where the family allows
    it. `preprocessing=False` turns the built-in Rescaling / Normalization block off where the
    family has the switch."""
    import keras

    name, smallest, can_free, kwargs = APPS[family]
    if free and not can_free:
        raise ValueError(f"{family} needs a fixed image size")
    side = None if free else (size or smallest)
    kwargs = dict(kwargs)
    if free:
        kwargs.update(include_top=False, pooling="avg")
    else:
        kwargs.update(classes=classes, classifier_activation=None)
    if family in PREPROCESSING:
        kwargs["include_preprocessing"] = preprocessing
    elif not preprocessing:
        raise ValueError(f"{family} has no include_preprocessing switch")
    if family.startswith("MobileNetV3"):
        kwargs["minimalistic"] = False
    ctor = getattr(keras.applications, name)
    km = ctor(weights=None, input_shape=(side, side, 3), **kwargs)
    return reseed(km, seed)


def reseed(km, seed: int = 0):
    """Re-draw every weight of `km` (in place) from a seeded generator; returns `km`."""
    rng = np.random.default_rng(seed)
    for v in km.weights:
        path = (getattr(v, "path", None) or v.name).lower()
        leaf = path.rsplit("/", 1)[-1]
        shape = tuple(v.shape)
        if leaf in ("count",) or "seed_generator" in path or v.dtype not in ("float32", "float16"):
            continue
        if "variance" in leaf:
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("gamma", "scale") or "layer_scale" in path or "layerscale" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("moving_mean", "mean"):
            value = rng.standard_normal(shape) * 0.1
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 2 else shape[0]
            if "depthwise" in leaf:  # (kh, kw, cin, multiplier): each output reads kh*kw inputs
                fan_in = int(np.prod(shape[:2]))
            value = rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        else:
            value = rng.standard_normal(shape) * 0.1
        v.assign(np.asarray(value, dtype=v.dtype))
    return km


def image(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal NHWC images (scaled to pixel range when the model rescales)."""
    return np.random.default_rng(seed).standard_normal((batch, size, size, 3)).astype(np.float32)


# keras-hub backbones built from arguments: tiny (2 layers, hidden 32), vocabulary 100
HUB: dict[str, dict] = {
    "BertBackbone": dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                         intermediate_dim=64, max_sequence_length=32),
    "DistilBertBackbone": dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                               intermediate_dim=64, max_sequence_length=32),
    "RobertaBackbone": dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                            intermediate_dim=64, max_sequence_length=32),
    "GPT2Backbone": dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                         intermediate_dim=64, max_sequence_length=32),
    "LlamaBackbone": dict(vocabulary_size=100, num_layers=2, num_query_heads=4, num_key_value_heads=2,
                          hidden_dim=32, intermediate_dim=64),
    "ViTBackbone": dict(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                        mlp_dim=64),
    "WhisperBackbone": dict(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                            intermediate_dim=64, num_mels=16, max_encoder_sequence_length=32,
                            max_decoder_sequence_length=16),
}


def hub(name: str, seed: int = 0):
    """The keras-hub backbone `name` built from HUB's arguments, with seeded weights. For
    Whisper, its encoder alone (a functional model of the backbone's encoder layers)."""
    import keras_hub

    backbone = getattr(keras_hub.models, name)(**HUB[name])
    if name == "WhisperBackbone":
        backbone = whisper_encoder(backbone)
    return reseed(backbone, seed)


def whisper_encoder(backbone):
    """The encoder half of a WhisperBackbone as its own keras.Model (features -> sequence)."""
    import keras

    inp = backbone.input["encoder_features"] if isinstance(backbone.input, dict) else backbone.inputs[0]
    out = backbone.output["encoder_sequence_output"]
    return keras.Model(inp, out, name="whisper_encoder")


def hub_inputs(name: str, batch: int, seq: int, seed: int = 0) -> dict:
    """Seeded inputs for `hub(name)`: token ids below the vocabulary, a 0/1 padding mask with
    at least the first token kept, images for ViT, log-mel features for the Whisper encoder."""
    rng = np.random.default_rng(seed)
    args = HUB[name]
    if name == "ViTBackbone":
        h, w, c = args["image_shape"]
        return {"images": rng.standard_normal((batch, h, w, c)).astype(np.float32)}
    if name == "WhisperBackbone":
        return {"encoder_features": rng.standard_normal((batch, seq, args["num_mels"])).astype(np.float32)}
    ids = rng.integers(0, args["vocabulary_size"], (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    mask[:, seq // 2 + 1:] = rng.integers(0, 2, (batch, seq - seq // 2 - 1))
    out = {"token_ids": ids, "padding_mask": mask}
    if name == "BertBackbone":
        out["segment_ids"] = rng.integers(0, 2, (batch, seq)).astype(np.int32)
    return out
