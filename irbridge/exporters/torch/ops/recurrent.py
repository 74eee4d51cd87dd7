"""LSTM, GRU and RNN -> nn.LSTM / nn.GRU / nn.RNN with ONNX's gates reordered to torch's
(LSTM i,o,f,c -> i,f,g,o; GRU z,r,h -> r,z,n), run on ONNX's layouts by
runtime_rnn.run_recurrent (initial states, sequence_lens as a packed sequence). What the
layers cannot express runs as runtime_rnn.recurrent_loop, the operator's own definition."""

from __future__ import annotations

import numpy as np
from torch import nn

from .. import runtime_rnn as rt
from ..registry import converter

_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
_ALPHA_DEFAULT = {"LeakyRelu": 0.01, "HardSigmoid": 0.2, "ThresholdedRelu": 1.0, "Elu": 1.0,
                  "ScaledTanh": 1.0, "Affine": 1.0}
_BETA_DEFAULT = {"HardSigmoid": 0.5, "ScaledTanh": 1.0, "Affine": 0.0}
# ONNX gate blocks in torch's order
_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
_LAYER = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def _activations(ctx, kind, dirs):
    names = [_text(a) for a in (ctx.attr("activations") or [])] or _DEFAULT_ACTS[kind] * dirs
    alphas, betas = list(ctx.attr("activation_alpha") or []), list(ctx.attr("activation_beta") or [])
    acts = []
    for name in names:
        alpha = (alphas.pop(0) if alphas else _ALPHA_DEFAULT[name]) if name in _ALPHA_DEFAULT else None
        beta = (betas.pop(0) if betas else _BETA_DEFAULT[name]) if name in _BETA_DEFAULT else None
        acts.append((name, alpha, beta))
    return acts


def _reorder(a, kind, hidden):
    blocks = [a[..., k * hidden:(k + 1) * hidden, :] if a.ndim == 2 else a[k * hidden:(k + 1) * hidden]
              for k in _ORDER[kind]]
    return np.concatenate(blocks, axis=0)


def _recurrent(ctx, kind):
    hidden = ctx.attr("hidden_size")
    direction = _text(ctx.attr("direction", "forward"))
    layout = ctx.attr("layout", 0)
    w, r = ctx.const(1), ctx.const(2)
    b = ctx.const(3) if ctx.has_input(3) else None
    dirs = 2 if direction == "bidirectional" else 1
    acts = _activations(ctx, kind, dirs)
    names = [a[0] for a in acts]
    n_state = 3 if kind == "LSTM" else 2
    lens = ctx.x(4) if ctx.has_input(4) else None
    h0 = ctx.x(5) if ctx.has_input(5) else None
    c0 = ctx.x(6) if kind == "LSTM" and ctx.has_input(6) else None
    peep = ctx.const(7) if kind == "LSTM" and ctx.has_input(7) else None
    rnn_act = names[0] if kind == "RNN" and len(set(names)) == 1 and names[0] in ("Tanh", "Relu") else None
    layer_ok = (
        w is not None and r is not None and (b is not None or not ctx.has_input(3))
        and direction != "reverse" and ctx.attr("clip") is None and not ctx.attr("input_forget", 0)
        and (peep is None or not peep.any()) and not (kind == "LSTM" and ctx.has_input(7) and peep is None)
        and (kind != "GRU" or ctx.attr("linear_before_reset", 0))
        and (kind == "RNN" and rnn_act or names == _DEFAULT_ACTS[kind] * dirs)
        and w.dtype.kind == "f"
    )
    if not layer_ok:
        p = ctx.x(7) if kind == "LSTM" and ctx.has_input(7) else None
        out = ctx.call(rt.recurrent_loop, kind, ctx.x(0), ctx.x(1), ctx.x(2), ctx.x(3), lens, h0, c0, p,
                       direction, acts, ctx.attr("clip"), ctx.attr("linear_before_reset", 0),
                       ctx.attr("input_forget", 0), layout)
        return ctx.split(out, n_state)
    params = {}
    for d in range(dirs):
        suffix = "_reverse" if d else ""
        params[f"weight_ih_l0{suffix}"] = _reorder(w[d], kind, hidden)
        params[f"weight_hh_l0{suffix}"] = _reorder(r[d], kind, hidden)
        if b is not None:
            n = b.shape[1] // 2
            params[f"bias_ih_l0{suffix}"] = _reorder(b[d][:n], kind, hidden)
            params[f"bias_hh_l0{suffix}"] = _reorder(b[d][n:], kind, hidden)
    kwargs = {"input_size": w.shape[2], "hidden_size": hidden, "bias": b is not None,
              "bidirectional": dirs == 2}
    if kind == "RNN":
        kwargs["nonlinearity"] = rnn_act.lower()
    name = ctx.module(_LAYER[kind], params, **kwargs)
    layer = ctx.builder.graph.get_attr(name)
    out = ctx.call(rt.run_recurrent, layer, ctx.x(0), h0, c0, lens, layout)
    return ctx.split(out, n_state)


@converter("LSTM", since=7)
def lstm(ctx):
    return _recurrent(ctx, "LSTM")


@converter("GRU", since=7)
def gru(ctx):
    return _recurrent(ctx, "GRU")


@converter("RNN", since=7)
def rnn(ctx):
    return _recurrent(ctx, "RNN")
