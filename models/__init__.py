"""The reference zoo: small, deterministic networks the tests, benchmarks and demo use.

- `torch_zoo`: PyTorch builders (VGG-style, ResNet-style, MLP), weights from a fixed seed.
- `onnx_zoo`: the model-zoo networks that the onnx package ships under
  backend/test/data/light, with their constant weight fills replaced by seeded random
  weights (constant weights hide layout bugs).
"""
