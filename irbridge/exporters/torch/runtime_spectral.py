"""Helpers model.py carries for the spectral ops (ONNX DFT and STFT hold complex numbers as a
trailing dim of 2, real signals as a trailing dim of 1)."""

from __future__ import annotations

import torch


def onnx_dft(x, dft_length, axis, inverse, onesided):
    """ONNX DFT along `axis` (of x, whose last dim is 1 or 2): torch.fft.fft/ifft with the
    signal cut or zero-padded to dft_length; onesided keeps the n // 2 + 1 unique bins, and an
    inverse onesided DFT takes those bins back to a real signal (irfft, last dim 1)."""
    z = x[..., 0] if x.shape[-1] == 1 else torch.complex(x[..., 0], x[..., 1])
    axis = int(axis) % x.dim()
    if inverse and onesided:
        n = 2 * (z.shape[axis] - 1) if dft_length is None else int(dft_length)
        return torch.fft.irfft(z, n=n, dim=axis).unsqueeze(-1)
    n = z.shape[axis] if dft_length is None else int(dft_length)
    y = torch.fft.ifft(z, n=n, dim=axis) if inverse else torch.fft.fft(z, n=n, dim=axis)
    if onesided:
        y = y.narrow(axis, 0, n // 2 + 1)
    return torch.view_as_real(y)


def onnx_stft(signal, frame_step, window, frame_length, onesided):
    """ONNX STFT: frames of frame_length every frame_step samples (no centring, no padding),
    times the window, each transformed: [batch, frames, bins, 2]."""
    step = int(frame_step)
    length = window.shape[0] if frame_length is None else int(frame_length)
    z = signal[..., 0] if signal.shape[-1] == 1 else torch.complex(signal[..., 0], signal[..., 1])
    frames = z.unfold(1, length, step)  # [batch, frames, length]
    if window is not None:
        frames = frames * window
    y = torch.fft.fft(frames, dim=-1)
    if onesided:
        y = y[..., : length // 2 + 1]
    return torch.view_as_real(y)
