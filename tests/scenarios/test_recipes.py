"""The README's recipes, run as written."""

from __future__ import annotations

import numpy as np
from irbridge.models import onnx_zoo

from tests.conftest import assert_close, ort_run, seeded


def test_fc8_class_subset_recipe():
    # --- the README recipe, verbatim apart from the model source ---------------------------
    import onnx_ir as ir

    import irbridge

    m = irbridge.normalize(irbridge.load(onnx_zoo.light_model("bvlc_alexnet", seed=0)))
    keep = [281, 282, 285]  # the classes to keep (ImageNet: tabby, tiger cat, Egyptian cat)
    fc8 = next(n for n in m.graph if n.metadata_props["irbridge.source"] == "fc8")
    rows_are_classes = fc8.op_type == "Conv" or fc8.attributes.get_int("transB", 0)
    for v in fc8.inputs[1:]:  # weight and bias
        w = v.const_value.numpy()
        w = w[keep] if rows_are_classes or w.ndim == 1 else w[:, keep]
        v.const_value = ir.Tensor(np.ascontiguousarray(w), name=v.name)
        v.shape = ir.Shape(w.shape)
    m.graph.outputs[0].shape = None  # let shape inference say the new size
    m = irbridge.normalize(m, ["infer-shapes"])
    # ----------------------------------------------------------------------------------------
    x = seeded((1, 3, 224, 224), seed=1)
    full = ort_run(onnx_zoo.light_model("bvlc_alexnet", seed=0), {"data_0": x})[0]
    sub = ort_run(m, {"data_0": x})[0]
    assert sub.shape == (1, 3)
    assert_close(sub, full[:, keep] / full[:, keep].sum())  # softmax over the kept classes
