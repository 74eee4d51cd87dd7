"""Conv/resize models to Keras and TF, as a user converts and loads them: a segmentation net
(FPN/UNet-like: nearest, bilinear, align_corners, bicubic and fixed-size interpolation, sizes read
from a skip connection's live shape), a wav2vec2 with a LayerNorm conv front end and grouped
positional conv, irbridge's wav2vec2-like audio front end and transformers' Wav2Vec2Model
(GroupNorm front end). Each is converted with its check on (two sizes), saved, reloaded
(`keras.saving.load_model` after `import irbridge.keras_layers`; `tf.saved_model.load`'s
serving_default) and compared with onnxruntime on the source file at another size."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_close

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
torch = pytest.importorskip("torch", reason="torch is not installed (pip install irbridge[torch])")

from tests.exporters.test_torch_dynamic import _wav2vec2 as wav2vec2_export  # noqa: E402
from tests.exporters.test_torch_dynamic import (  # noqa: E402
    export_torchscript,
    make_feeds,
    ort_file,
)


class SegNet(torch.nn.Module):
    """Encoder of strided convs, a top-down path of every interpolation mode, a fixed-size head."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.enc1 = nn.Conv2d(3, 8, 3, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.enc3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.lat = nn.Conv2d(16, 8, 1)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.head = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        f = torch.nn.functional
        e1 = f.relu(self.enc1(x))
        e2 = f.relu(self.enc2(e1))
        e3 = f.relu(self.enc3(e2))
        u2 = self.lat(self.up(e3) + e2)
        a = f.interpolate(u2, size=e1.shape[2:], mode="bilinear", align_corners=False)
        b = f.interpolate(u2, scale_factor=2.0, mode="bilinear", align_corners=True)
        c = f.interpolate(u2, scale_factor=2.0, mode="bicubic", align_corners=False)
        y = self.head(torch.cat([a + b + c, e1], 1))
        return f.interpolate(y, size=(20, 20), mode="bilinear", align_corners=False)


def _segnet(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    return export_torchscript(SegNet().eval(), [x], tmp_path / "seg.onnx", ["image"],
                              {"image": {0: "batch", 2: "height", 3: "width"}}, {0: "batch"}, ("mask",))


def _wav2vec2(norm):
    return lambda tmp_path: wav2vec2_export(tmp_path, norm)


def _audio(tmp_path):
    from irbridge.models import dynamic_zoo

    return dynamic_zoo.export_onnx("audio", tmp_path / "audio.onnx")


MODELS = [
    ("segnet", _segnet, {"batch": 4, "height": 32, "width": 40}, {"UpSampling2D", "Resizing", "Resize", "Conv2D"}),
    ("wav2vec2_layer_norm", _wav2vec2("layer"), {"batch": 4, "samples": 1700}, {"Conv1D"}),
    ("wav2vec2_group_norm", _wav2vec2("group"), {"batch": 4, "samples": 1700}, {"Conv1D", "GroupNormalization"}),
    ("audio_zoo", _audio, {"batch": 4, "samples": 1700}, {"Conv1D", "GroupNormalization"}),
]


def _convert(path, to, out):
    import irbridge

    return irbridge.convert(str(path), to, out)


def _layout(info):
    return [p for _, p in info["inputs"]], [p for _, p in info["outputs"]]


@pytest.mark.parametrize("name,build,sizes,layers", MODELS, ids=[m[0] for m in MODELS])
def test_model_to_keras_reloaded(name, build, sizes, layers, tmp_path):
    import irbridge.keras_layers  # noqa: F401  (the registered layers, as a user imports them)
    from irbridge.exporters.keras import info

    path = build(tmp_path)
    res = _convert(path, "keras", tmp_path / "m.keras")
    assert res.report.ok, str(res.report)
    assert layers <= {type(layer).__name__ for layer in res.exported.layers}
    perms_in, perms_out = _layout(info(res.exported))
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    feeds = make_feeds(path, sizes, seed=7)
    refs = ort_file(path, feeds)
    xs = [np.ascontiguousarray(x.transpose(p)) for x, p in zip(feeds.values(), perms_in)]
    got = reloaded(xs if len(xs) > 1 else xs[0], training=False)
    got = got if isinstance(got, (list, tuple)) else [got]
    for g, r, p in zip(got, refs, perms_out):
        assert_close(np.asarray(g).transpose(np.argsort(p)), r)


@pytest.mark.parametrize("name,build,sizes,layers", MODELS, ids=[m[0] for m in MODELS])
def test_model_to_tf_reloaded(name, build, sizes, layers, tmp_path):
    tf = pytest.importorskip("tensorflow")

    path = build(tmp_path)
    res = _convert(path, "tf", tmp_path / "saved")
    assert res.report.ok, str(res.report)
    perms_in, perms_out = _layout(res.exported.irbridge_info)
    names_out = res.exported.output_names
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    feeds = make_feeds(path, sizes, seed=8)
    refs = ort_file(path, feeds)
    arg_names = sorted(serve.structured_input_signature[1])
    assert len(arg_names) == len(feeds) == 1
    x = np.ascontiguousarray(next(iter(feeds.values())).transpose(perms_in[0]))
    out = serve(**{arg_names[0]: tf.constant(x)})
    for n, r, p in zip(names_out, refs, perms_out):
        assert_close(out[n].numpy().transpose(np.argsort(p)), r)
