"""The exceptions irbridge raises. Each maps to a CLI exit code (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Sequence


class IrbridgeError(Exception):
    """Base class. `kind` names the failure in JSON; `nodes` lists the nodes/layers at fault."""

    kind = "error"
    exit_code = 2

    def __init__(self, message: str, *, nodes: Sequence[str] = ()):
        super().__init__(message)
        self.message = message
        self.nodes = list(nodes)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "nodes": self.nodes}


class InputError(IrbridgeError):
    """The input cannot be used: missing or corrupt file, wrong arguments, unknown format."""

    kind = "bad_input"


class UnsupportedError(IrbridgeError):
    """The model holds constructs irbridge does not convert; `nodes` lists every one."""

    kind = "unsupported"


class VerificationError(IrbridgeError):
    """The converted model's outputs differ from the reference; `report` says where."""

    kind = "verification_failed"
    exit_code = 1

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report
