"""Layout of transformer exports to Keras (issue 16, "Layout"): sequence tensors keep their
order and no Permute layer (nor a transposing TensorOp) is left inside the blocks.

Each row exports a model to Keras with `irbridge.convert` (checked against onnxruntime at two
sizes), counts the layers that move data between layouts, and compares the Keras model with
onnxruntime on the source file at batch 2 and 3 (other image sizes / sequence lengths too).
What is asserted, per row:

- ViT (irbridge's dynamic zoo, free batch/height/width): no Permute at all. Its NCHW image
  input is NHWC by default, and the patch embedding's flatten reads the NHWC conv output as it
  is held (the transpose-before-flatten pass).
- wav2vec2-style audio front end (Conv1D stack, free batch/samples): no Permute. The raw
  [batch, samples] input is unsqueezed to [batch, 1, samples] for the first Conv1D, which reads
  it channels-last as [batch, samples, 1]: a Reshape, since only a size-1 axis moves. The
  (B, C, T) -> (B, T, C) transpose before the LayerNorm is a free view.
- LLaMA (transformers, dynamo export, grouped-query attention, rotary embedding): no Permute
  (the unbatch-transpose and sink-head-transposes passes).
- a Conv1D whose output is cut by Slices (wav2vec2's positional convolution drops its last
  step) and read as a sequence: no Permute; the Slices cut the axes where the channels-last
  data holds them (assign-nhwc holds a Slice's output as its input when `axes` is constant).
- T5's encoder of the real-world corpus (TorchScript): none; its attention-output Reshape, whose
  query length is read from another tensor and broadcast with the relative position bias, is
  proven a no-op by following each size back to where it comes from.
- wav2vec2 of the real-world corpus, dynamo export: none. Its GroupNorm (Reshape ->
  InstanceNormalization -> Reshape(Shape(x))) keeps the Conv1D's channels-last layout, and its
  attention's head merge Reshape, whose frame count is computed from the samples
  (Shape(s)[1] // 20 - 1, the dim named `((sequence//20)) - 1`), is proven a no-op.
- with IRBRIDGE_FULL_ZOO=1 also GPT-2, DeiT, CLIP vision and Whisper's encoder: none (Whisper's
  head merge through the drop-noop-reshape pass); transformers' wav2vec2: none (its
  positional convolution as above).

The nine zoo CNNs staying Permute-free is tests/exporters/test_keras_zoo.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close, zoo_subset
from tests.exporters.test_torch_dynamic import make_feeds, ort_file

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
torch = pytest.importorskip("torch", reason="torch is not installed (pip install irbridge[torch])")

TEXT = [{"batch": 2, "sequence": 7}, {"batch": 3, "sequence": 11}]


def _dynamic_zoo(name):
    def build(tmp_path):
        from irbridge.models import dynamic_zoo

        return dynamic_zoo.export_onnx(name, tmp_path / f"{name}.onnx")
    return build


def _hf_zoo(name):
    def build(tmp_path):
        pytest.importorskip("transformers")
        from irbridge.models import hf_zoo

        return hf_zoo.export(name, tmp_path / f"{name}.onnx")
    return build


def _hf_row(name):
    def build(tmp_path):
        from tests.exporters.test_keras_transformers import HF_ROWS

        return dict(HF_ROWS)[name](tmp_path)
    return build


def _hf_corpus(name, style):
    def build(tmp_path):
        pytest.importorskip("transformers")
        from irbridge.models import hf_corpus

        return hf_corpus.export(name, tmp_path / f"{name}-{style}.onnx", style)
    return build


def _sliced_conv(tmp_path):
    """x [batch, 4, frames] -> Conv1d(6, k=3, pad=1) -> Slice(axes=[2], [0:-1]) (wav2vec2's
    padding cut) -> Slice(no axes: [0:big, 4:0:-2], the channels reversed in steps of 2)
    -> Gelu -> Transpose(0, 2, 1) -> y [batch, frames-1, 2]."""
    import onnx
    from onnx import TensorProto, helper

    from tests.conftest import make_model, seeded

    def ints(name, v):
        return helper.make_tensor(name, TensorProto.INT64, [len(v)], v)

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1], kernel_shape=[3]),
             helper.make_node("Slice", ["c", "zero", "minus1", "two"], ["cut"]),
             helper.make_node("Slice", ["cut", "starts", "ends", "", "steps"], ["rev"]),
             helper.make_node("Gelu", ["rev"], ["g"]),
             helper.make_node("Transpose", ["g"], ["y"], perm=[0, 2, 1])]
    inits = [onnx.numpy_helper.from_array(seeded((6, 4, 3), seed=1), "w"),
             onnx.numpy_helper.from_array(seeded((6,), seed=2), "b"),
             ints("zero", [0]), ints("minus1", [-1]), ints("two", [2]),
             ints("starts", [0, 4]), ints("ends", [2**62, 0]), ints("steps", [1, -2])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, "frames"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "frames_cut", 2])
    path = tmp_path / "sliced_conv.onnx"
    onnx.save(make_model(nodes, [x], [y], inits, opset=20), str(path))
    return path


def _wav2vec2_layer_norm(tmp_path):
    from tests.exporters.test_torch_dynamic import _wav2vec2

    return _wav2vec2(tmp_path, norm="layer")


# name -> (build(tmp_path) -> .onnx path, sizes of the free dims, Permutes expected, where they are)
ROWS = {
    "vit": (_dynamic_zoo("vit"), [{"batch": 2, "height": 12, "width": 20}, {"batch": 3, "height": 20, "width": 8}],
            0, None),
    "audio": (_dynamic_zoo("audio"), [{"batch": 2, "samples": 1600}, {"batch": 3, "samples": 2400}], 0, "entry"),
    "llama": (_hf_row("llama"), TEXT, 0, None),
    "gpt2": (_hf_row("gpt2"), TEXT, 0, None),
    "deit": (_hf_zoo("deit"), [{"batch": 2}, {"batch": 3}], 0, None),
    "clip_vision": (_hf_zoo("clip_vision"), [{"batch": 2}, {"batch": 3}], 0, None),
    "whisper_encoder": (_hf_zoo("whisper_encoder"), [{"batch": 2}, {"batch": 3}], 0, None),
    "sliced_conv": (_sliced_conv, [{"batch": 2, "frames": 9}, {"batch": 3, "frames": 14}], 0, None),
    # transformers' Wav2Vec2Model (LayerNorm front end): its positional convolution's padding
    # Slice cuts the channels-last Conv1D output where it holds the time axis
    "wav2vec2": (_wav2vec2_layer_norm, [{"batch": 2, "samples": 1600}, {"batch": 3, "samples": 2400}], 0, "entry"),
    # the corpus' dynamo export (GroupNorm front end): the GroupNorm's closing Reshape(Shape(x))
    # is held as x (channels-last) and its Shape(start=0) recognised; the head merge's
    # Reshape to [B, 4, Shape(s)[1] // 20 - 1, 8] is proven a no-op by the frames dim's name
    # T5's encoder (TorchScript, the corpus): the attention output's Reshape([B, -1, T, 8]) with T
    # read from the query is proven a no-op (its rows followed back through the softmax and the
    # broadcast position bias to the Range over the length: dim_origin), so the head merge is
    # computed in the merged order
    "t5_encoder": (_hf_corpus("t5_encoder", "torchscript"), TEXT, 0, None),
    # SegFormer's TorchScript export: the sequence reduction inside each block (tokens -> image ->
    # strided Conv2D -> tokens) is Permute-free, its flatten's batch proven by following it back
    # (dim_origin); seven remain outside the blocks, where a stage's tokens become the next
    # stage's image and in the decode head (the image's channel count is not known statically)
    "segformer": (_hf_corpus("segformer", "torchscript"), [{"batch": 2}, {"batch": 3}], 7, None),
    "wav2vec2_dynamo": (_hf_corpus("wav2vec2", "dynamo"),
                        [{"batch": 2, "sequence": 1600}, {"batch": 3, "sequence": 2400}], 0, "entry"),
}


# transposing TensorOps a row keeps because the source computes them: T5's relative position
# bias, looked up as [T, T, heads] and turned to [heads, T, T] once per forward (no batch axis)
SOURCE_TRANSPOSES = {"t5_encoder": 1}


def layout_layers(km) -> tuple[list, list]:
    """(Permute layers, TensorOp layers that transpose) of a Keras model."""
    permutes = [layer for layer in km.layers if isinstance(layer, keras.layers.Permute)]
    transposes = [layer for layer in km.layers if type(layer).__name__ == "TensorOp"
                  and layer.get_config().get("op") == "transpose"]
    return permutes, transposes


@pytest.mark.parametrize("name", zoo_subset(ROWS, everyday=("vit", "audio", "llama", "sliced_conv", "wav2vec2_dynamo", "t5_encoder")))
def test_transformer_exports_hold_no_permute_in_their_blocks(name, tmp_path):
    import irbridge
    from irbridge.exporters.keras import info

    build, sizes, expected, where = ROWS[name]
    src = build(tmp_path)
    res = irbridge.convert(str(src), "keras")
    assert res.report.ok, str(res.report)
    km = res.exported
    permutes, transposes = layout_layers(km)
    assert len(transposes) == SOURCE_TRANSPOSES.get(name, 0), [layer.name for layer in transposes]
    assert len(permutes) == expected, [layer.name for layer in permutes]
    if where == "entry":  # the raw samples enter the first Conv1D through a Reshape, not a Permute
        first = next(layer for layer in km.layers if type(layer).__name__ == "Conv1D")
        entry = first.input._keras_history.operation
        assert type(entry).__name__ == "Reshape" and tuple(entry.output.shape[1:]) == (None, 1)
    import onnx

    names = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]
    layout = info(km)
    for k, size in enumerate(sizes):
        feeds = make_feeds(src, size, seed=11 + k)
        refs = ort_file(src, feeds)
        held = dict(layout["inputs"])  # how the Keras model takes each input (NHWC images, NLC audio)
        xs = [np.ascontiguousarray(feeds[n].transpose(held[n])) for n in names if n in feeds]
        got = km(xs if len(xs) > 1 else xs[0], training=False)
        got = got if isinstance(got, (list, tuple)) else [got]
        for g, r, (_, perm) in zip(got, refs, layout["outputs"]):
            assert_close(np.asarray(g).transpose(np.argsort(perm)), r)


def test_keep_nchw_io_costs_the_vit_one_permute_at_its_image_input(tmp_path):
    """With NCHW kept at the interface, the image enters through one Permute (to NHWC for the
    patch conv) and that is the only one."""
    import irbridge

    src = ROWS["vit"][0](tmp_path)
    res = irbridge.convert(str(src), "keras", keep_nchw_io=True)
    assert res.report.ok, str(res.report)
    km = res.exported
    permutes, transposes = layout_layers(km)
    assert transposes == [] and len(permutes) == 1
    assert permutes[0].input is km.inputs[0]
    feeds = make_feeds(src, {"batch": 3, "height": 8, "width": 16}, seed=5)
    assert_close(np.asarray(km(feeds["pixel_values"], training=False)), ort_file(src, feeds)[0])
