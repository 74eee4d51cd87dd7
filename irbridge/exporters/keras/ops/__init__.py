"""Keras converters, one module per op family."""

from . import attention  # noqa: F401  (registers the MultiHeadAttention pattern finder)
