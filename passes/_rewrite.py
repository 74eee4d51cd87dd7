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
