"""What the Keras and TF importers share: quiet TF imports, the opset asked of tf2onnx,
and the refusal of graph ops that touch files or run Python."""

from __future__ import annotations

import contextlib
import logging
import os

from ..errors import UnsupportedError

# TF ops that read or write files, run Python, or reach the network: never imported.
UNSAFE_TF_OPS = {
    "ReadFile", "WriteFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints",
    "ShardedFilename", "ImmutableConst", "PrintV2", "Print", "DebugIdentity",
}


def tf2onnx_opset() -> int:
    return 18


@contextlib.contextmanager
def quiet_tf():
    """tf2onnx logs every step at INFO; keep stderr for what matters."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def refuse_unsafe_ops(graph_def, where: str) -> None:
    """List every node of a GraphDef that does I/O or runs code, and refuse them all."""
    nodes = [n for n in graph_def.node if n.op in UNSAFE_TF_OPS]
    for f in graph_def.library.function:
        nodes += [n for n in f.node_def if n.op in UNSAFE_TF_OPS]
    if nodes:
        listed = ", ".join(f"{n.name} ({n.op})" for n in nodes)
        raise UnsupportedError(f"{where}: the graph holds ops that touch files or run code, which "
                               f"irbridge never imports: {listed}.", nodes=[n.name for n in nodes])
