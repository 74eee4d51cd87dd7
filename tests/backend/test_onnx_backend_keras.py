"""onnx's backend suite on the Keras exporter (irbridge.backend.keras): node cases of every
op the Keras exporter claims, and the zoo models. A case the exporter refuses with a clear
UnsupportedError (a 3-D conv, a dilated pool, ...) is skipped with that message as the reason;
wrong numbers fail."""

from __future__ import annotations

import functools
import unittest

import pytest

pytest.importorskip("keras", reason="keras is not installed (pip install irbridge[tf])")

import onnx.backend.test  # noqa: E402

import irbridge.backend.keras as backend  # noqa: E402
from irbridge.errors import UnsupportedError  # noqa: E402
from tests.backend.test_onnx_backend import OUT_OF_SCOPE  # noqa: E402


class _Refusals:
    """The backend, with refusals (UnsupportedError) turned into skips that say why."""

    is_compatible = staticmethod(backend.is_compatible)
    supports_device = staticmethod(backend.supports_device)
    run_model = staticmethod(backend.run_model)

    @staticmethod
    @functools.wraps(backend.prepare)
    def prepare(model, device="CPU", **kwargs):
        try:
            return backend.prepare(model, device, **kwargs)
        except UnsupportedError as e:
            lines = e.message.splitlines()
            raise unittest.SkipTest(f"refused: {(lines[1] if len(lines) > 2 else lines[0]).strip()}") from None


# claimed ops whose results differ from the reference, each with the reason
EXPECTED_FAILURES = {
    r"test_identity_(opt|sequence)": "optional and sequence types are not tensors",
    r"test_PReLU_.d_multiparam": "PRelu slope [C] against a (N, C, ...) input from old PyTorch exports",
    r"test_resize_downsample_scales_(linear|cubic)_align_corners": (
        "onnx's reference takes align_corners over the fractional length scale*in; onnxruntime, "
        "irbridge's reference (DESIGN.md §6), over the integer output length"),
}

runner = onnx.backend.test.BackendTest(_Refusals, __name__)
_unclaimed = [case.name for case in onnx.backend.test.loader.load_model_tests(kind="node")
              if case.model is not None and not backend.is_compatible(case.model)]
runner.exclude("^(" + "|".join(_unclaimed) + ")_cpu$")
for pattern in OUT_OF_SCOPE:
    runner.exclude(pattern)
runner.exclude(r"test_(PReLU|operator|Conv|ConvTranspose|Avg|Max|BatchNorm|.*)_.*_cuda")
for pattern in EXPECTED_FAILURES:
    runner.xfail(pattern)
runner.include(r"test_.*_cpu$")

globals().update(runner.test_cases)
