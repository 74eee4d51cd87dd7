"""Rows of the real-world corpus (irbridge.models.hf_corpus: transformers architectures exported
the way published files are made) that the Keras exporter once refused, each converted to Keras
and TF, reloaded as a user would and compared with onnxruntime at a batch neither check used.

What each row needed:
- dinov2 (TorchScript): its position embeddings are resized at run time from the stored table:
  the table becomes a constant tensor of the Keras graph;
- segformer (TorchScript): a Conv reads a Concat of tensors resized to run-time sizes, whose
  channel count Keras did not know;
- mobilevit (TorchScript): a LayerNormalization over axes Keras lost after the patch unfolding;
- swin (TorchScript): window padding of (B, H, W, C) tensors by pads computed at run time;
- lstm / gru (TorchScript): a bidirectional two-layer RNN reading an Embedding;
- beit (TorchScript): its relative-position index is built at run time with a ScatterND;
- lstm / gru (dynamo): the file records the taggers' output at the example's length
  ([batch, 8, 48]) although the sequence is free (the drop-stale-dims pass forgets it); checked
  at sequence 8 and 13, reloaded at 11.
"""

from __future__ import annotations

import pytest

from tests.conftest import zoo_subset
from tests.exporters.test_keras_transformers import check_artifacts

pytestmark = pytest.mark.slow
pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("keras")

ROWS = ["dinov2", "segformer", "mobilevit", "swin", "lstm", "gru", "beit", "lstm-dynamo", "gru-dynamo"]
LAYERS = {"lstm": ("Bidirectional",), "gru": ("Bidirectional",), "lstm-dynamo": ("Bidirectional",),
          "gru-dynamo": ("Bidirectional",), "segformer": ("Conv2D",),
          "mobilevit": ("LayerNormalization",), "dinov2": ("LayerNormalization",), "swin": ("LayerNormalization",),
          "beit": ("LayerNormalization",)}


@pytest.mark.parametrize("name", zoo_subset(ROWS, everyday=["dinov2", "swin", "lstm", "gru-dynamo"]))
def test_corpus_row_to_keras_and_tf(name, tmp_path):
    from irbridge.models import hf_corpus

    arch, _, style = name.partition("-")
    src = hf_corpus.export(arch, tmp_path / f"{name}.onnx", style or "torchscript")
    sizes = {"batch": 4, "sequence": 11}
    check_artifacts(src, tmp_path, sizes, layers=LAYERS[name], permutes=None)
