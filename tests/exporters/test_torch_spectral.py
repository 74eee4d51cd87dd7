"""DFT and STFT rows (torch.fft helpers) against onnxruntime: real and complex signals,
forward, inverse and onesided, dft_length cutting and padding, the axis as attribute (opset 17)
and as input (opset 20), STFT with a window."""

from __future__ import annotations

import numpy as np
import pytest

from tests.exporters.torch_op_rows import check

i64 = lambda v: np.array(v, np.int64)  # noqa: E731
HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(8) / 8)).astype(np.float32)

ROWS = [
    ("dft_real", "DFT", {}, [(2, 12, 1)], 1, 17),
    ("dft_complex_inverse", "DFT", {"inverse": 1}, [(2, 12, 2)], 1, 17),
    ("dft_onesided_length", "DFT", {"onesided": 1}, [(2, 12, 1), i64(16)], 1, 17),
    ("dft_axis2_cut", "DFT", {"axis": 2}, [(2, 3, 10, 2), i64(8)], 1, 17),
    ("dft_axis_input_opset20", "DFT", {}, [(2, 10, 6, 2), None, i64(1)], 1, 20),
    ("dft_irfft_opset20", "DFT", {"inverse": 1, "onesided": 1}, [(2, 7, 2), None, i64(-2)], 1, 20),
    ("stft_window", "STFT", {}, [(2, 40, 1), i64(4), HANN], 1, 17),
    ("stft_frame_length_complex", "STFT", {"onesided": 0}, [(1, 30, 2), i64(5), None, i64(8)], 1, 17),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_spectral_matches_onnxruntime(row, torch):
    check(row, torch)
