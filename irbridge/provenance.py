"""Metadata keys that let Netron and reports speak the user's names (DESIGN.md §3)."""

from __future__ import annotations

import re

import onnx_ir as ir

SOURCE = "irbridge.source"  # node: the source layer's name
SOURCE_OP = "irbridge.source_op"  # node: the source layer's type
LAYOUT = "irbridge.layout"  # initializer: non-canonical layout, e.g. HWIO
SOURCE_FORMAT = "irbridge.source_format"  # model
SOURCE_OPSET = "irbridge.source_opset"  # model: the opset the source file had
PASSES = "irbridge.passes"  # model: comma-separated, in order applied


def source_of(node: ir.Node) -> str:
    """The source layer a node came from (falls back to the node's own name)."""
    return node.metadata_props.get(SOURCE) or node.name or _first_output(node)


# Weight-name suffixes of common exporters: conv1_w_0 (Caffe2), fc.weight (PyTorch), conv/W ...
_WEIGHT_SUFFIX = re.compile(r"([_./:](w|W|weight|weights|kernel|filter)(_0|:0)?)$")


def fill_defaults(graph: ir.Graph) -> None:
    """Give every node without provenance a source (its layer's name) and source_op (its op).

    The layer name is the source module's path where the file records one: a dynamo export's
    `pkg.torch.onnx.name_scopes` (`[..., 'vit.encoder.layer.0.attention.attention.query',
    'linear']`) or a TorchScript export's node name
    (`/vit/encoder/layer.0/attention/attention/query/MatMul`), both giving
    `vit.encoder.layer.0.attention.attention.query`; else the node's weight when that is named
    like one (`conv1_1_w_0` -> `conv1_1`); else the node's name. Provenance already written
    (irbridge's importers) is kept.
    """
    from .exporters.torch import hierarchy  # pure Python, no torch

    for i, node in enumerate(graph):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
        props = node.metadata_props
        if SOURCE not in props:
            props[SOURCE] = (hierarchy.dynamo_path(props.get(hierarchy.SCOPES)) or hierarchy.scope_path(node.name)
                             or _weight_stem(node) or node.name)
        props.setdefault(SOURCE_OP, node.op_type)


def _weight_stem(node: ir.Node) -> str | None:
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    weight = node.inputs[1]
    producer = weight.producer()
    if not weight.is_initializer() and (producer is None or producer.op_type not in ("Constant", "ConstantOfShape")):
        return None
    stem = _WEIGHT_SUFFIX.sub("", weight.name)
    return stem if stem and stem != weight.name else None


def copy_provenance(src: ir.Node, dst: ir.Node) -> None:
    """Give a node created by a pass the provenance of the node it replaces."""
    for key in (SOURCE, SOURCE_OP):
        if key in src.metadata_props:
            dst.metadata_props[key] = src.metadata_props[key]


def python_name(name: str) -> str:
    """A valid Python identifier that still reads like `name` (features.0 -> features_0)."""
    ident = re.sub(r"\W", "_", name).strip("_") or "v"
    if ident[0].isdigit():
        ident = "_" + ident
    return ident


def _first_output(node: ir.Node) -> str:
    return next((o.name for o in node.outputs if o.name), "")
