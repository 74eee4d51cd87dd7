"""The source module a node belongs to, as a dotted path (`layer1.0.conv1`), read from the
ONNX file's own records: torch.onnx's dynamo exports put `pkg.torch.onnx.name_scopes` on each
node (`['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d']`), TorchScript exports put the
scope in the node name (`/layer1/layer1.0/conv1/Conv`, `/encoder/layer.0/attention/MatMul`),
and irbridge's importers and `provenance.fill_defaults` record `irbridge.source`.

Pure Python (no torch): provenance may use it too.
"""

from __future__ import annotations

import ast
import re

SCOPES = "pkg.torch.onnx.name_scopes"
_SOURCE = "irbridge.source"
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$|^\d+$")


def scope_path(name: str) -> str | None:
    """A TorchScript node name's module path: `/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`,
    `/encoder/layer.0/attention/self/query/MatMul` -> `encoder.layer.0.attention.self.query`.
    Each scope names its module relative to the last one that was called (a ModuleList is
    never called, so `layer.0` follows `encoder` directly)."""
    if not name.startswith("/"):
        return None
    segments = [s for s in name.split("/")[1:-1] if s]
    path: list[str] = []
    for seg in segments:
        parts = seg.split(".")
        head = parts[:-1]
        if head and path[-len(head):] == head:
            path.append(parts[-1])
        else:
            path.extend(parts)
    return ".".join(path) if path and all(_SEGMENT.match(p) for p in path) else None


def dynamo_path(scopes_text: str | None) -> str | None:
    """The module of a dynamo export's node, from its name scopes (the last scope is the op)."""
    if not scopes_text:
        return None
    try:
        scopes = ast.literal_eval(scopes_text)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(scopes, (list, tuple)) or len(scopes) < 3:
        return None
    path = str(scopes[-2])
    return path if is_module_path(path) else None


def is_module_path(text: str | None) -> bool:
    """Whether text reads as a module attribute path (`features.0`, `fc`), not a node name."""
    return bool(text) and all(_SEGMENT.match(p) for p in text.split("."))


_PARAM = re.compile(r"^(.+)\.(weight|bias|running_mean|running_var|weight_ih_l0|weight_hh_l0)$")


def param_path(node) -> str | None:
    """The module named by the node's parameters, as a state_dict names them (`layer1.0.conv1`
    from its weight `layer1.0.conv1.weight`): the strongest record of where a layer lives."""
    for v in list(node.inputs)[1:]:
        if v is None or not v.name or (v.const_value is None and not v.is_initializer()):
            continue
        m = _PARAM.match(v.name)
        if m and is_module_path(m.group(1)):
            return m.group(1)
    return None


def module_path(node) -> str | None:
    """The dotted module path of an onnx_ir node, or None when its records name no module."""
    props = node.metadata_props
    path = param_path(node) or dynamo_path(props.get(SCOPES))
    if path:
        return path
    source = props.get(_SOURCE)
    if source and source != node.name and is_module_path(source) and not source.startswith(node.op_type + "_"):
        return source
    return scope_path(node.name or "") or scope_path(source or "")
