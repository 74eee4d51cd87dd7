"""Caffe importer: the real prototxts with random caffemodels (V2 and V1 forms) to ONNX,
PyTorch and Keras; Caffe's pooling rounding and AVE divisor against numpy from Caffe's
definition; refusals."""

from __future__ import annotations

import numpy as np
import pytest
from irbridge.models.caffe_zoo import SHARED, write_blobs, write_caffemodel

from irbridge.importers.caffe import caffe_pool_size
from tests.conftest import assert_close, seeded

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the real Caffe prototxts ({SHARED}) are not beside this checkout")

NETS = ["lenet", "cifar10_quick", "bvlc_alexnet_deploy", "bvlc_reference_caffenet_deploy"]
# Caffe's own output shapes (from running these nets in Caffe), batch 1
EXPECTED = {"lenet": {"pool2": [1, 50, 4, 4], "prob": [1, 10]},
            "cifar10_quick": {"pool1": [1, 32, 16, 16], "pool3": [1, 64, 4, 4], "prob": [1, 10]},
            "bvlc_alexnet_deploy": {"pool1": [1, 96, 27, 27], "pool5": [1, 256, 6, 6], "prob": [1, 1000]},
            "bvlc_reference_caffenet_deploy": {"pool2": [1, 256, 13, 13], "pool5": [1, 256, 6, 6]}}


def _input(name):
    return {"data": (1, 1, 28, 28) if name == "lenet" else (1, 3, 32, 32) if name == "cifar10_quick" else (1, 3, 227, 227)}


@needs_shared
@pytest.mark.parametrize("name", NETS)
def test_shapes_follow_caffes_rules(name):
    import irbridge

    m = irbridge.load(SHARED / f"{name}.prototxt", inputs=_input(name))
    assert m.metadata_props["irbridge.random_weights"] == "true"
    m = irbridge.normalize(m)  # ONNX's own shape inference, independent of the importer's
    shapes = {n.metadata_props["irbridge.source"]: list(n.outputs[0].shape) for n in m.graph}
    for layer, shape in EXPECTED[name].items():
        assert shapes[layer] == shape, layer


@needs_shared
@pytest.mark.parametrize("v1", [False, True], ids=["v2-blobs", "v1-blobs"])
@pytest.mark.parametrize("name", NETS)
def test_real_prototxts_with_random_caffemodels(name, v1, tmp_path, torch):
    import irbridge

    proto = SHARED / f"{name}.prototxt"
    model_path = tmp_path / f"{name}.caffemodel"
    blobs = write_caffemodel(proto, model_path, seed=3, v1=v1)
    m = irbridge.load(proto, model_path, inputs=_input(name))
    assert "irbridge.random_weights" not in m.metadata_props
    conv1 = m.graph.initializers["conv1/weights"].const_value.numpy()
    np.testing.assert_array_equal(conv1, blobs["conv1"][0])  # OIHW, as Caffe stores it
    for target in ("onnx", "torch"):
        res = irbridge.convert(proto, target, weights=model_path, inputs=_input(name))
        assert res.report.ok, f"{target}: {res.report}"


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("name", NETS)
def test_real_prototxts_to_keras(name, tmp_path):
    pytest.importorskip("keras")
    import irbridge

    proto = SHARED / f"{name}.prototxt"
    write_caffemodel(proto, tmp_path / "w.caffemodel", seed=4)
    res = irbridge.convert(proto, "keras", weights=tmp_path / "w.caffemodel", inputs=_input(name))
    assert res.report.ok


def numpy_caffe_pool(x, k, s, p, op):
    """Caffe's pooling from its definition (pooling_layer.cpp): ceil-rounded output size, last
    window dropped if it would start in the padding, windows clipped to the padded input for
    the AVE divisor and to the real input for the values."""
    n, c, h, w = x.shape
    oh, ow = caffe_pool_size(h, k, p, s), caffe_pool_size(w, k, p, s)
    out = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, h + p), min(ws + k, w + p)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            win = x[:, :, hs:he, ws:we]
            out[:, :, i, j] = win.max(axis=(2, 3)) if op == "MAX" else win.sum(axis=(2, 3)) / size
    return out


POOLS = [(3, 2, 0), (3, 2, 1), (2, 2, 1), (3, 3, 1), (5, 3, 2)]


@pytest.mark.parametrize("op", ["MAX", "AVE"])
@pytest.mark.parametrize("k,s,p", POOLS)
def test_pooling_matches_caffes_definition(op, k, s, p, tmp_path):
    import irbridge
    from irbridge.verify import onnx_runner

    proto = tmp_path / "pool.prototxt"
    proto.write_text(f'''name: "p" layer {{ name: "data" type: "Input" top: "data"
      input_param {{ shape: {{ dim: 1 dim: 2 dim: 11 dim: 10 }} }} }}
    layer {{ name: "pool" type: "Pooling" bottom: "data" top: "pool"
      pooling_param {{ pool: {op} kernel_size: {k} stride: {s} pad: {p} }} }}''')
    x = seeded((1, 2, 11, 10), seed=k + s + p)
    got = next(iter(onnx_runner(irbridge.load(proto)).run({"data": x}).values()))
    assert_close(got, numpy_caffe_pool(x.astype(np.float64), k, s, p, op))


def test_eltwise_coefficients_batchnorm_factor_and_scale(tmp_path):
    import irbridge
    from irbridge.verify import onnx_runner

    proto = tmp_path / "n.prototxt"
    proto.write_text('''name: "n" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 3 dim: 4 dim: 4 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0.001 } }
    layer { name: "sc" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }
    layer { name: "sum" type: "Eltwise" bottom: "bn" bottom: "data" top: "sum"
      eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }''')
    rng = np.random.default_rng(0)
    mean, var, factor = rng.standard_normal(3), rng.uniform(1, 2, 3), 7.5
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    write_blobs(tmp_path / "n.caffemodel", {"bn": [mean * factor, var * factor, np.array([factor])],
                                            "sc": [gamma, beta]})
    x = seeded((1, 3, 4, 4), seed=1)
    got = next(iter(onnx_runner(irbridge.load(proto, tmp_path / "n.caffemodel")).run({"data": x}).values()))
    c = lambda v: v.reshape(1, 3, 1, 1)  # noqa: E731
    bn = (x - c(mean)) / np.sqrt(c(var) + 0.001) * c(gamma) + c(beta)  # Caffe: sums / factor
    assert_close(got, 0.5 * bn - 2 * x)


def test_python_and_unknown_layers_are_all_refused(tmp_path):
    import irbridge

    proto = tmp_path / "bad.prototxt"
    proto.write_text('''name: "b" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 3 dim: 4 dim: 4 } } }
    layer { name: "py" type: "Python" bottom: "data" top: "py" }
    layer { name: "odd" type: "Frobnicate" bottom: "py" top: "odd" }''')
    with pytest.raises(irbridge.UnsupportedError) as e:
        irbridge.load(proto)
    assert e.value.nodes == ["py", "odd"] and "never imported" in e.value.message


ELEMENTWISE = [
    ("AbsVal", "", lambda x: np.abs(x)),
    ("BNLL", "", lambda x: np.log1p(np.exp(x))),
    ("ELU", "elu_param { alpha: 0.5 }", lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    ("Power", "power_param { power: 2 scale: 0.5 shift: 3 }", lambda x: (3 + 0.5 * x) ** 2),
    ("Exp", "exp_param { base: 2 scale: 0.5 shift: 1 }", lambda x: 2.0 ** (1 + 0.5 * x)),
    ("Log", "log_param { base: 10 scale: 2 shift: 20 }", lambda x: np.log10(20 + 2 * x)),
    ("ReLU", "relu_param { negative_slope: 0.1 }", lambda x: np.where(x > 0, x, 0.1 * x)),
    ("Reshape", "reshape_param { shape { dim: 0 dim: -1 dim: 4 } }", lambda x: x.reshape(1, -1, 4)),
]


@pytest.mark.parametrize("kind,param,ref", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_layers_match_caffes_definition(kind, param, ref, tmp_path):
    import irbridge
    from irbridge.verify import onnx_runner

    proto = tmp_path / "e.prototxt"
    proto.write_text(f'''name: "e" layer {{ name: "data" type: "Input" top: "data"
      input_param {{ shape: {{ dim: 1 dim: 3 dim: 4 dim: 4 }} }} }}
    layer {{ name: "l" type: "{kind}" bottom: "data" top: "l" {param} }}''')
    x = seeded((1, 3, 4, 4), seed=9)
    got = next(iter(onnx_runner(irbridge.load(proto)).run({"data": x}).values()))
    assert_close(got, ref(x.astype(np.float64)))


def test_split_tops_and_a_three_way_product(tmp_path):
    import irbridge
    from irbridge.verify import onnx_runner

    proto = tmp_path / "s.prototxt"
    proto.write_text('''name: "s" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 2 dim: 3 dim: 3 } } }
    layer { name: "split" type: "Split" bottom: "data" top: "a" top: "b" top: "c" }
    layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "p"
      eltwise_param { operation: PROD } }''')
    x = seeded((1, 2, 3, 3), seed=5)
    got = next(iter(onnx_runner(irbridge.load(proto)).run({"data": x}).values()))
    assert_close(got, x.astype(np.float64) ** 3)


def numpy_deconv(x, w, b, stride, pad):
    """Caffe's deconvolution from its definition: each input pixel scatters w into the output."""
    n, c, h, wd = x.shape
    k = w.shape[-1]
    full = np.zeros((n, w.shape[1], (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride: i * stride + k, j * stride: j * stride + k] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    out = full[:, :, pad: full.shape[2] - pad, pad: full.shape[3] - pad]
    return out + b[None, :, None, None]


def test_deconvolution_slice_and_crop(tmp_path):
    import irbridge
    from irbridge.verify import onnx_runner

    proto = tmp_path / "d.prototxt"
    proto.write_text('''name: "d" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 4 dim: 5 dim: 5 } } }
    layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
      convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 } }
    layer { name: "sl" type: "Slice" bottom: "up" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 1 } }
    layer { name: "crop" type: "Crop" bottom: "s2" bottom: "data" top: "cropped" crop_param { axis: 2 offset: 2 } }''')
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 3, 4, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    write_blobs(tmp_path / "d.caffemodel", {"up": [w, b]})
    x = seeded((1, 4, 5, 5), seed=3)
    s1, cropped = onnx_runner(irbridge.load(proto, tmp_path / "d.caffemodel")).run({"data": x}).values()
    up = numpy_deconv(x.astype(np.float64), w.astype(np.float64), b, 2, 1)  # 1x3x10x10
    assert_close(s1, up[:, :1])
    assert_close(cropped, up[:, 1:, 2:7, 2:7])


def numpy_lrn_within(x, size, alpha, beta):
    """Caffe's WITHIN_CHANNEL LRN: x / (1 + alpha/size^2 * sum of x^2 over a size x size window)^beta."""
    pad = (size - 1) // 2
    sq = np.pad(x * x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    h, w = x.shape[2:]
    sums = sum(sq[:, :, i:i + h, j:j + w] for i in range(size) for j in range(size))
    return x / (1 + alpha / size ** 2 * sums) ** beta


def numpy_argmax_pairs(x, k):
    """Caffe's ArgMax without an axis, out_max_val: per item, the top k (index, value) of its flat values."""
    flat = x.reshape(len(x), -1)
    idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    return np.stack([idx.astype(np.float64), np.take_along_axis(flat, idx, 1)], 1)[..., None]  # N x 2 x k x 1


R = np.random.default_rng(11)
SCALE3, BIAS34 = R.standard_normal(3), R.standard_normal((3, 4))
# (layer text, blobs, numpy reference of the output from the input x (1x3x4x5) and the second bottom s (3))
PARAM_LAYERS = [
    ("lrn-within", 'type: "LRN" bottom: "data" lrn_param { norm_region: WITHIN_CHANNEL local_size: 3 alpha: 0.5 '
                   'beta: 0.75 k: 7 }', {}, lambda x, s: numpy_lrn_within(x, 3, 0.5, 0.75)),
    ("bias-two-axes", 'type: "Bias" bottom: "data" bias_param { num_axes: 2 }', {"l": [BIAS34]},
     lambda x, s: x + BIAS34[None, :, :, None]),
    ("bias-bottom", 'type: "Bias" bottom: "data" bottom: "s"', {}, lambda x, s: x + s[None, :, None, None]),
    ("scale-bottom-bias", 'type: "Scale" bottom: "data" bottom: "s" scale_param { bias_term: true }',
     {"l": [SCALE3]}, lambda x, s: x * s[None, :, None, None] + SCALE3[None, :, None, None]),
    ("scale-scalar", 'type: "Scale" bottom: "data" scale_param { num_axes: 0 }', {"l": [np.array(-1.5)]},
     lambda x, s: x * -1.5),
    ("permute", 'type: "Permute" bottom: "data" permute_param { order: 0 order: 2 }',
     {}, lambda x, s: x.transpose(0, 2, 1, 3)),
    ("argmax-axis", 'type: "ArgMax" bottom: "data" argmax_param { axis: 1 }', {},
     lambda x, s: x.argmax(1)[:, None].astype(np.float64)),
    ("argmax-values", 'type: "ArgMax" bottom: "data" argmax_param { axis: 3 top_k: 2 out_max_val: true }', {},
     lambda x, s: -np.sort(-x, axis=3)[..., :2]),
    ("argmax-pairs", 'type: "ArgMax" bottom: "data" argmax_param { top_k: 3 out_max_val: true }', {},
     lambda x, s: numpy_argmax_pairs(x, 3)),
]


@pytest.mark.parametrize("text,blobs,ref", [p[1:] for p in PARAM_LAYERS], ids=[p[0] for p in PARAM_LAYERS])
def test_layers_match_caffes_definition(text, blobs, ref, tmp_path):
    import irbridge
    from irbridge.verify import onnx_runner

    proto = tmp_path / "p.prototxt"
    proto.write_text(f'''name: "p" layer {{ name: "data" type: "Input" top: "data"
      input_param {{ shape: {{ dim: 1 dim: 3 dim: 4 dim: 5 }} }} }}
    layer {{ name: "s" type: "Input" top: "s" input_param {{ shape: {{ dim: 3 }} }} }}
    layer {{ name: "l" {text} top: "out" }}''')
    write_blobs(tmp_path / "p.caffemodel", blobs)
    x, s = seeded((1, 3, 4, 5), seed=2), seeded((3,), seed=3)
    model = irbridge.load(proto, tmp_path / "p.caffemodel")
    feeds = {i.name: v for i, v in zip(model.graph.inputs, (x, s))}
    got = onnx_runner(model).run(feeds)
    assert list(got) == ["out"]  # the graph output is named after the Caffe top
    assert_close(got["out"], ref(x.astype(np.float64), s.astype(np.float64)))


def test_in_place_outputs_keep_their_caffe_top_name(tmp_path):
    import irbridge

    proto = tmp_path / "i.prototxt"
    proto.write_text('''name: "i" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 3 dim: 4 dim: 4 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 4 } }
    layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }''')
    model = irbridge.load(proto)
    assert [o.name for o in model.graph.outputs] == ["fc"]
    relu = next(n for n in model.graph if n.op_type == "Relu")
    assert relu.outputs[0].name == "fc" and relu.inputs[0].name != "fc"


def test_parameter_layers_convert_to_pytorch(tmp_path, torch):
    import irbridge

    proto = tmp_path / "p.prototxt"
    proto.write_text('''name: "p" layer { name: "data" type: "Input" top: "data"
      input_param { shape: { dim: 1 dim: 3 dim: 8 dim: 8 } } }
    layer { name: "lrn" type: "LRN" bottom: "data" top: "lrn"
      lrn_param { norm_region: WITHIN_CHANNEL local_size: 3 alpha: 0.5 beta: 0.75 } }
    layer { name: "sc" type: "Scale" bottom: "lrn" top: "lrn" scale_param { bias_term: true } }
    layer { name: "b" type: "Bias" bottom: "lrn" top: "b" }
    layer { name: "perm" type: "Permute" bottom: "b" top: "perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
    layer { name: "am" type: "ArgMax" bottom: "perm" top: "am" argmax_param { top_k: 2 out_max_val: true } }''')
    res = irbridge.convert(proto, "torch", tmp_path / "out", random_weights=True)
    assert res.report.ok and [o.name for o in res.model.graph.outputs] == ["am"]
