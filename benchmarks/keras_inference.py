"""Inference speed of an exported Keras model vs the same network written by hand in Keras.

The hand-written network is keras.applications.VGG16 (random weights, no download); the
exported one is irbridge's Keras export of seed 000's TF-style VGG16 graph
(irbridge.models.vgg16_npy). Run by hand:

    .venv/bin/python benchmarks/keras_inference.py [--batch 1] [--repeats 20]

Prints the median latency of each and their ratio (target: exported within 10%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def median_latency(fn, x, repeats: int) -> float:
    fn(x)  # warm-up: tracing and allocation
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf
    from irbridge.models.vgg16_npy import vgg16_graph, vgg16_weights

    import irbridge

    by_hand = keras.applications.VGG16(weights=None, input_shape=(224, 224, 3), classifier_activation="softmax")
    graph = vgg16_graph(vgg16_weights(seed=0), batch=args.batch)
    exported = irbridge.convert(graph, "keras", check=False).exported
    permutes = sum(isinstance(layer, keras.layers.Permute) for layer in exported.layers)

    x = np.random.default_rng(0).standard_normal((args.batch, 224, 224, 3)).astype(np.float32)
    results = {}
    for name, model in (("hand-written keras.applications.VGG16", by_hand), ("irbridge export", exported)):
        fn = tf.function(lambda t, m=model: m(t, training=False), jit_compile=False)
        results[name] = median_latency(fn, tf.constant(x), args.repeats)
    hand, ours = results.values()
    for name, t in results.items():
        print(f"{name:40s} {t * 1000:8.1f} ms (batch {args.batch}, median of {args.repeats})")
    print(f"ratio export/hand: {ours / hand:.3f}   Permute layers in the export: {permutes}")


if __name__ == "__main__":
    main()
