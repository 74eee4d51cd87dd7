"""Keras converters, one module per op family."""
