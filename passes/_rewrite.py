"""Applying local rewrite rules to a fixpoint, the loop several passes share."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import onnx_ir as ir
from onnx_ir.passes import common

Rule = Callable[[ir.Graph, ir.Node], bool]  # rewrites around one node; True if it changed the graph


def apply_rules(model: ir.Model, rules: Sequence[tuple[Collection[str], Rule]]) -> bool:
    """Try each (op types, rule) on every node of those types until no rule fires.

    Shapes are inferred first and again after every round that changed something, because
    rules read static shapes and create values that have none yet. Returns whether anything
    changed.
    """
    common.ShapeInferencePass()(model)
    modified = False
    while True:
        changed = False
        for node in list(model.graph):
            for op_types, rule in rules:
                if node.graph is not None and node.domain == "" and node.op_type in op_types:
                    changed |= rule(model.graph, node)
        if not changed:
            return modified
        modified = True
        common.ShapeInferencePass()(model)


def rewrite_each(model: ir.Model, op_type: str, rule: Rule) -> bool:
    """One sweep of `rule` over the nodes of `op_type` (default domain), after shape inference:
    for rules whose rewrite never creates another match. Returns whether anything changed."""
    common.ShapeInferencePass()(model)
    modified = False
    for node in list(model.graph):
        if node.graph is not None and node.op_type == op_type and node.domain == "":
            modified |= rule(model.graph, node)
    return modified


def rebuilt(node: ir.Node, inputs, attr_changes: dict) -> ir.Node:
    """A one-output copy of `node` reading `inputs`, with `attr_changes` applied and the
    original's provenance (to move a node across a Transpose)."""
    from irbridge.provenance import copy_provenance

    kept = {k: v for k, v in node.attributes.items() if k not in attr_changes}
    new = ir.Node(node.domain, node.op_type, inputs, list(kept.values()), name=node.name, num_outputs=1)
    for k, v in attr_changes.items():
        new.attributes[k] = ir.convenience.convert_attribute(k, v)
    copy_provenance(node, new)
    return new
