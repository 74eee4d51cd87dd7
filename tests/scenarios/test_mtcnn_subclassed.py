"""Real MTCNN nets (subclassed Keras models with PReLU, as the `mtcnn` package writes them)
convert to every target with example arrays as `inputs`, checked at two batch sizes, and the
exports match Keras itself at a third. P-Net, fully convolutional, keeps free image sides when
the shape says so (`(None, None, None, 3)`)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")
torch = pytest.importorskip("torch")

from irbridge.models.keras_zoo import MTCNN, mtcnn_net  # noqa: E402

import irbridge  # noqa: E402
from irbridge.verify import compare  # noqa: E402

pytestmark = pytest.mark.slow


def _keras_outputs(net, x):
    out = net(x)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("name", sorted(MTCNN))
def test_mtcnn_net_converts_with_example_arrays(name):
    net = mtcnn_net(name)
    size = MTCNN[name][1]
    example = np.random.default_rng(1).standard_normal((1, size, size, 3)).astype("float32")
    res = irbridge.convert(net, "torch", inputs=(example,))
    assert res.report.ok and [s["x"][0] for s in res.report.shapes] == [2, 3]
    ops = {n.op_type for n in res.model.graph}
    assert "PRelu" in ops and "Neg" not in ops  # TF's composed PReLU recovered as one op
    x = np.random.default_rng(5).standard_normal((5, size, size, 3)).astype("float32")
    with torch.no_grad():  # the port takes and gives what the source does: NHWC images and maps
        got = res.exported(torch.from_numpy(x))
    got = got if isinstance(got, tuple) else (got,)
    for ref, g in zip(_keras_outputs(net, x), got):
        assert compare("out", ref, g.numpy()).ok
    for target in ("keras", "tf"):
        assert irbridge.convert(net, target, inputs=(example,)).report.ok


def test_pnet_keeps_free_image_sides_when_the_shape_leaves_them_free():
    net = mtcnn_net("pnet")
    res = irbridge.convert(net, "torch", inputs={"x": (None, None, None, 3)})
    sides = [s["x"][1:3] for s in res.report.shapes]
    assert res.report.ok and sides[0] != sides[1]
    x = np.random.default_rng(2).standard_normal((2, 31, 45, 3)).astype("float32")
    with torch.no_grad():
        got = res.exported(torch.from_numpy(x))
    for ref, g in zip(_keras_outputs(net, x), got):
        assert compare("out", ref, g.numpy()).ok
