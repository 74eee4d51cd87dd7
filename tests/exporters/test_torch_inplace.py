"""In-place activations in PyTorch exports: used where nothing else reads the activation's input
(as hand-written networks do), never where that would change another reader's value."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import assert_close, make_model, ort_run, seeded

F = TensorProto.FLOAT


def _graph():
    """x -> Relu (graph input: not in place)
    conv_a -> Relu (only reader: in place)
    conv_b -> Relu and Add (two readers: not in place)
    conv_c -> Clip(0, 6) (only reader: ReLU6 in place); conv_c's Relu output is a graph output
    Reshape -> Relu (a view: not in place)
    conv_d -> Relu, conv_d also a graph output (not in place)"""
    inits = [numpy_helper.from_array(seeded((4, 4, 3, 3), seed=k), f"w{k}") for k in range(4)]
    inits += [numpy_helper.from_array(np.float32(v), n) for v, n in ((0.0, "lo"), (6.0, "hi"))]
    inits.append(numpy_helper.from_array(np.array([1, 4, 36], np.int64), "shape"))
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Relu", ["x"], ["rx"], name="relu_input"),
        helper.make_node("Conv", ["rx", "w0"], ["a"], name="conv_a", **pads),
        helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["ra", "w1"], ["b"], name="conv_b", **pads),
        helper.make_node("Relu", ["b"], ["rb"], name="relu_b"),
        helper.make_node("Add", ["b", "rb"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "w2"], ["c"], name="conv_c", **pads),
        helper.make_node("Clip", ["c", "lo", "hi"], ["rc"], name="relu6_c"),
        helper.make_node("Reshape", ["rc", "shape"], ["flat"], name="reshape"),
        helper.make_node("Relu", ["flat"], ["rflat"], name="relu_view"),
        helper.make_node("Conv", ["rc", "w3"], ["d"], name="conv_d", **pads),
        helper.make_node("Relu", ["d"], ["rd"], name="relu_d"),
    ]
    outputs = [helper.make_tensor_value_info(n, F, None) for n in ("rc", "rflat", "d", "rd")]
    return make_model(nodes, [helper.make_tensor_value_info("x", F, [1, 4, 6, 6])], outputs, inits)


def test_activations_work_in_place_only_where_no_other_reader_sees_it(torch, tmp_path):
    import irbridge

    model = _graph()
    feeds = {"x": seeded((1, 4, 6, 6), seed=7)}
    ref = ort_run(model, feeds)
    gm = irbridge.export(irbridge.normalize(irbridge.load(model)), "torch", check=False)
    inplace = {name: getattr(m, "inplace", None) for name, m in gm.named_children()}
    assert inplace["relu_a"] is True and inplace["relu6_c"] is True
    assert not inplace["relu_input"] and not inplace["relu_b"] and not inplace["relu_view"]
    assert not inplace["relu_d"]
    x = torch.from_numpy(feeds["x"].copy())
    with torch.no_grad():
        out = gm(x)
    np.testing.assert_array_equal(x.numpy(), feeds["x"])  # the caller's input is untouched
    for got, r in zip(out, ref):
        assert_close(got.numpy(), r)
    # the written model.py says so too, and the layer-wise check still sees each layer's own output
    result = irbridge.convert(model, "torch", tmp_path / "out", inputs=feeds)
    assert "nn.ReLU(inplace=True)" in (tmp_path / "out" / "model.py").read_text()
    report = irbridge.verify(model, result.exported, inputs=feeds, layerwise=True)
    assert report.ok, report
    assert {"conv_a", "conv_c"} <= {layer.name for layer in report.layers}
    assert all(layer.ok and layer.local_max_abs == 0 for layer in report.layers), report.layers
