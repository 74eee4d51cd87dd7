"""ONNX Backend API adapters over irbridge's exporters (onnx.backend.base.Backend)."""
