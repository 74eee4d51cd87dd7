"""What irbridge changes in tf2onnx's conversion, only while it converts for irbridge: each fix
names the tf2onnx behaviour it corrects and the model where it showed."""

from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def transposes_kept():
    """tf2onnx's transpose optimizer ends by turning each Transpose that moves only size-1 axes
    into a Reshape, computing the target from the shape it has *recorded* for the input. After
    it has pushed transposes through an elementwise op that record can be stale (NHWC where the
    tensor is now NCHW), and the Reshape is then wrong: ConvNeXt's LayerNormalization after a
    1x1 feature map gave (N, 1, 768, 768) instead of (N, 1, 1, 768). The Transposes are kept
    (irbridge's reshape-as-transpose and cancel-transposes passes own that layout work)."""
    from tf2onnx.optimizer.transpose_optimizer import TransposeOptimizer

    original = TransposeOptimizer.post_optimize_action
    TransposeOptimizer.post_optimize_action = lambda self: None
    try:
        yield
    finally:
        TransposeOptimizer.post_optimize_action = original


@contextlib.contextmanager
def no_fake_feeds(weights: set[str]):
    """Grappler (which tf2onnx runs) makes a zero tensor of every Placeholder whose shape is fully
    known, to feed it: for weight Placeholders a second copy of all the weights (VGG-16: +530
    MB). Grappler sees them with a free first dim instead; their shapes are put back after."""
    from tf2onnx import tf_loader

    original = tf_loader.tf_optimize_grappler

    def optimize(input_names, output_names, graph_def):
        import tensorflow as tf

        shapes, relaxed = {}, tf.compat.v1.GraphDef()
        relaxed.CopyFrom(graph_def)
        for n in relaxed.node:
            if n.op == "Placeholder" and n.name in weights and len(n.attr["shape"].shape.dim) > 0:
                shapes[n.name] = type(n.attr["shape"].shape)()
                shapes[n.name].CopyFrom(n.attr["shape"].shape)
                n.attr["shape"].shape.dim[0].size = -1
        out = original(input_names, output_names, relaxed)
        for n in out.node:
            if n.name in shapes and n.op == "Placeholder":
                n.attr["shape"].shape.CopyFrom(shapes[n.name])
        return out

    tf_loader.tf_optimize_grappler = optimize
    try:
        yield
    finally:
        tf_loader.tf_optimize_grappler = original


def _erfc(ctx, node, name, args):
    """Erfc(x) = 1 - Erf(x) (TF's exact GELU, `0.5 * x * erfc(-x / sqrt 2)`, which tf2onnx lacks)."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name, name="erf")
    one = ctx.make_const(utils.make_name(node.name + "/one"), np.array(1, dtype))
    node.type = "Sub"
    node.domain = ""
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


# TF ops tf2onnx does not convert, converted here (tf2onnx's custom_op_handlers)
HANDLERS = {"Erfc": (_erfc, [])}
