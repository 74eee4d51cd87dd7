"""Small Keras models shared by tests and examples.

`SubclassedCNN` is a subclassed model with no Input layer whose class takes no arguments, like
MTCNN's nets: Keras knows its input shape only once it has been built or called.
"""

from __future__ import annotations

import keras


class SubclassedCNN(keras.Model):
    """Conv2D(4, 3) -> Flatten -> Dense(3), layers named conv / flat / fc."""

    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3, name="conv")
        self.flat = keras.layers.Flatten(name="flat")
        self.fc = keras.layers.Dense(3, name="fc")

    def call(self, x):
        return self.fc(self.flat(self.conv(x)))


# --- MTCNN's three nets (Zhang et al. 2016), written as the `mtcnn` package writes them: --------
# subclassed models with no Input layer, PReLU after every conv, softmax face scores and box
# regressions as outputs. P-Net is fully convolutional (any image size); R-Net takes 24x24 crops,
# O-Net 48x48.


def _prelu(name: str):
    return keras.layers.PReLU(shared_axes=[1, 2], name=name)


class PNet(keras.Model):
    def __init__(self):
        super().__init__(name="pnet")
        L = keras.layers
        self.conv1, self.prelu1 = L.Conv2D(10, 3, name="conv1"), _prelu("prelu1")
        self.pool1 = L.MaxPooling2D(2, 2, padding="same", name="pool1")
        self.conv2, self.prelu2 = L.Conv2D(16, 3, name="conv2"), _prelu("prelu2")
        self.conv3, self.prelu3 = L.Conv2D(32, 3, name="conv3"), _prelu("prelu3")
        self.conv4_1, self.softmax = L.Conv2D(2, 1, name="conv4_1"), L.Softmax(axis=3, name="prob1")
        self.conv4_2 = L.Conv2D(4, 1, name="conv4_2")

    def call(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax(self.conv4_1(x))


class RNet(keras.Model):
    def __init__(self):
        super().__init__(name="rnet")
        L = keras.layers
        self.conv1, self.prelu1 = L.Conv2D(28, 3, name="conv1"), _prelu("prelu1")
        self.pool1 = L.MaxPooling2D(3, 2, padding="same", name="pool1")
        self.conv2, self.prelu2 = L.Conv2D(48, 3, name="conv2"), _prelu("prelu2")
        self.pool2 = L.MaxPooling2D(3, 2, name="pool2")
        self.conv3, self.prelu3 = L.Conv2D(64, 2, name="conv3"), _prelu("prelu3")
        self.flatten = L.Flatten(name="flatten")
        self.fc4, self.prelu4 = L.Dense(128, name="conv4"), L.PReLU(name="prelu4")
        self.fc5_1 = L.Dense(2, activation="softmax", name="conv5_1")
        self.fc5_2 = L.Dense(4, name="conv5_2")

    def call(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.fc4(self.flatten(self.prelu3(self.conv3(x)))))
        return self.fc5_2(x), self.fc5_1(x)


class ONet(keras.Model):
    def __init__(self):
        super().__init__(name="onet")
        L = keras.layers
        self.conv1, self.prelu1 = L.Conv2D(32, 3, name="conv1"), _prelu("prelu1")
        self.pool1 = L.MaxPooling2D(3, 2, padding="same", name="pool1")
        self.conv2, self.prelu2 = L.Conv2D(64, 3, name="conv2"), _prelu("prelu2")
        self.pool2 = L.MaxPooling2D(3, 2, name="pool2")
        self.conv3, self.prelu3 = L.Conv2D(64, 3, name="conv3"), _prelu("prelu3")
        self.pool3 = L.MaxPooling2D(2, 2, padding="same", name="pool3")
        self.conv4, self.prelu4 = L.Conv2D(128, 2, name="conv4"), _prelu("prelu4")
        self.flatten = L.Flatten(name="flatten")
        self.fc5, self.prelu5 = L.Dense(256, name="conv5"), L.PReLU(name="prelu5")
        self.fc6_1 = L.Dense(2, activation="softmax", name="conv6_1")
        self.fc6_2 = L.Dense(4, name="conv6_2")
        self.fc6_3 = L.Dense(10, name="conv6_3")

    def call(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.fc5(self.flatten(self.prelu4(self.conv4(x)))))
        return self.fc6_2(x), self.fc6_3(x), self.fc6_1(x)


MTCNN = {"pnet": (PNet, 12), "rnet": (RNet, 24), "onet": (ONet, 48)}


def mtcnn_net(name: str, seed: int = 0) -> keras.Model:
    """One of MTCNN's nets, called once on its input size, weights (PReLU slopes included)
    drawn from `seed`."""
    import numpy as np

    cls, size = MTCNN[name]
    net = cls()
    net(np.zeros((1, size, size, 3), "float32"))
    rng = np.random.default_rng(seed)
    net.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in net.get_weights()])
    return net
