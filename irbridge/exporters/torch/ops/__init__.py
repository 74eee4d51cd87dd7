"""Converters, one module per op family; each converter is registered with @converter."""
