"""Recurrent layers: nn.LSTM / nn.GRU / nn.RNN run on ONNX's tensor layouts, and an exact
step-by-step loop for what torch's layers cannot express (peepholes, clip, other activations,
a reverse-only direction, GRU with linear_before_reset=0). Copied into model.py when used."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def run_recurrent(layer, x, h0=None, c0=None, lens=None, layout=0):
    """Run a torch recurrent layer on ONNX's tensors; returns (Y, Y_h) or (Y, Y_h, Y_c) in
    ONNX's shapes: Y [seq, dirs, batch, hidden] (layout 0) or [batch, seq, dirs, hidden]."""
    dirs = 2 if layer.bidirectional else 1
    if layout:  # batch first: states are [batch, dirs, hidden] in ONNX, [dirs, batch, hidden] in torch
        x = x.transpose(0, 1)
        h0 = None if h0 is None else h0.transpose(0, 1).contiguous()
        c0 = None if c0 is None else c0.transpose(0, 1).contiguous()
    seq, batch = x.shape[0], x.shape[1]
    state = h0
    if isinstance(layer, torch.nn.LSTM):
        state = None if h0 is None and c0 is None else (
            h0 if h0 is not None else x.new_zeros(dirs, batch, layer.hidden_size),
            c0 if c0 is not None else x.new_zeros(dirs, batch, layer.hidden_size))
    if lens is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lens.cpu().long(), enforce_sorted=False)
        out, last = layer(packed, state)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=seq)
    else:
        out, last = layer(x, state)
    states = last if isinstance(last, tuple) else (last,)
    y = out.reshape(seq, batch, dirs, layer.hidden_size)
    if layout:
        return (y.transpose(0, 1),) + tuple(s.transpose(0, 1) for s in states)
    return (y.permute(0, 2, 1, 3),) + states


def rnn_activation(name, alpha=None, beta=None):
    """An ONNX recurrent activation by name, as a function."""
    fns = {
        "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Relu": torch.relu, "Softsign": F.softsign,
        "Softplus": F.softplus,
        "HardSigmoid": lambda v: torch.clamp(alpha * v + beta, 0, 1),
        "LeakyRelu": lambda v: F.leaky_relu(v, alpha),
        "ThresholdedRelu": lambda v: torch.where(v > alpha, v, torch.zeros_like(v)),
        "ScaledTanh": lambda v: alpha * torch.tanh(beta * v),
        "Affine": lambda v: alpha * v + beta,
        "Elu": lambda v: F.elu(v, alpha),
    }
    return fns[name]


def recurrent_loop(kind, x, w, r, b=None, lens=None, h0=None, c0=None, p=None, direction="forward",
                   activations=(), clip=None, linear_before_reset=0, input_forget=0, layout=0):
    """ONNX LSTM / GRU / RNN computed step by step from the operator's definition."""
    if layout:
        x = x.transpose(0, 1)
        h0 = None if h0 is None else h0.transpose(0, 1)
        c0 = None if c0 is None else c0.transpose(0, 1)
    seq, batch = x.shape[0], x.shape[1]
    dirs, hidden = w.shape[0], r.shape[-1]
    gates = w.shape[1] // hidden
    per_dir = len(activations) // dirs
    lens = torch.full((batch,), seq, dtype=torch.long) if lens is None else lens.long()
    ys, hs, cs = [], [], []
    for d in range(dirs):
        f = [rnn_activation(*a) for a in activations[d * per_dir:(d + 1) * per_dir]]
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        bias = b[d] if b is not None else x.new_zeros(2 * gates * hidden)
        wb, rb = bias[:gates * hidden], bias[gates * hidden:]
        h = h0[d] if h0 is not None else x.new_zeros(batch, hidden)
        c = c0[d] if c0 is not None else x.new_zeros(batch, hidden)
        y = x.new_zeros(seq, batch, hidden)
        for t in range(seq):
            active = t < lens
            # reverse: each sequence runs backwards over its own valid steps
            step = torch.where(active, lens - 1 - t, torch.zeros_like(lens)) if reverse else torch.full_like(lens, t)
            xt = x[step, torch.arange(batch)]
            xw = xt @ w[d].T + wb
            if kind == "GRU":
                z_x, r_x, h_x = xw.chunk(3, -1)
                rw_z, rw_r, rw_h = r[d].chunk(3, 0)
                rb_z, rb_r, rb_h = rb.chunk(3)
                zt, rt = _clip(z_x + h @ rw_z.T + rb_z, clip), _clip(r_x + h @ rw_r.T + rb_r, clip)
                zt, rt = f[0](zt), f[0](rt)
                if linear_before_reset:
                    ht = f[1](_clip(h_x + rt * (h @ rw_h.T + rb_h), clip))
                else:
                    ht = f[1](_clip(h_x + (rt * h) @ rw_h.T + rb_h, clip))
                new_h, new_c = (1 - zt) * ht + zt * h, c
            elif kind == "LSTM":
                g = _clip(xw + h @ r[d].T + rb, clip)
                gi, go, gf, gc = g.chunk(4, -1)
                if p is not None:
                    pi, po, pf = p[d].chunk(3)
                    gi, gf = gi + pi * c, gf + pf * c
                it = f[0](gi)
                ft = 1 - it if input_forget else f[0](gf)
                new_c = ft * c + it * f[1](gc)
                if p is not None:
                    go = go + po * new_c
                new_h = f[0](go) * f[2](new_c)
            else:
                new_h, new_c = f[0](_clip(xw + h @ r[d].T + rb, clip)), c
            keep = active[:, None]
            h, c = torch.where(keep, new_h, h), torch.where(keep, new_c, c)
            y[step, torch.arange(batch)] = torch.where(keep, new_h, y[step, torch.arange(batch)])
        ys.append(y)
        hs.append(h)
        cs.append(c)
    y, h, c = torch.stack(ys, 1), torch.stack(hs), torch.stack(cs)
    if layout:
        return y.permute(2, 0, 1, 3), h.transpose(0, 1), c.transpose(0, 1)
    return y, h, c


def _clip(v, clip):
    return v if clip is None else v.clamp(-clip, clip)
