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
