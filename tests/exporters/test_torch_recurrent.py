"""LSTM, GRU and RNN rows: constant weights become nn.LSTM / nn.GRU / nn.RNN (gates reordered),
the rest runs the exact loop; every output checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.exporters.torch_op_rows import Feed, check

rng = np.random.default_rng(7)
S, B, IN, H = 5, 3, 4, 6


def w(*shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


LENS = Feed(np.array([5, 2, 4], np.int32))
ROWS = [
    ("lstm", "LSTM", {"hidden_size": H}, [(S, B, IN), w(1, 4 * H, IN), w(1, 4 * H, H), w(1, 8 * H)], 3, 18),
    ("lstm_bidirectional_states", "LSTM", {"hidden_size": H, "direction": "bidirectional"},
     [(S, B, IN), w(2, 4 * H, IN), w(2, 4 * H, H), w(2, 8 * H), None, w(2, B, H), w(2, B, H)], 3, 18),
    ("lstm_sequence_lens", "LSTM", {"hidden_size": H, "direction": "bidirectional"},
     [(S, B, IN), w(2, 4 * H, IN), w(2, 4 * H, H), w(2, 8 * H), LENS], 3, 18),
    ("lstm_batch_first", "LSTM", {"hidden_size": H, "layout": 1},
     [(B, S, IN), w(1, 4 * H, IN), w(1, 4 * H, H), None, None, w(B, 1, H), w(B, 1, H)], 3, 18),
    ("lstm_peepholes_loop", "LSTM", {"hidden_size": H},
     [(S, B, IN), w(1, 4 * H, IN), w(1, 4 * H, H), w(1, 8 * H), None, None, None, w(1, 3 * H)], 3, 18),
    ("lstm_reverse_loop", "LSTM", {"hidden_size": H, "direction": "reverse"},
     [(S, B, IN), w(1, 4 * H, IN), w(1, 4 * H, H), w(1, 8 * H), LENS], 3, 18),
    ("gru_linear_before_reset", "GRU", {"hidden_size": H, "linear_before_reset": 1, "direction": "bidirectional"},
     [(S, B, IN), w(2, 3 * H, IN), w(2, 3 * H, H), w(2, 6 * H), None, w(2, B, H)], 2, 18),
    ("gru_loop", "GRU", {"hidden_size": H}, [(S, B, IN), w(1, 3 * H, IN), w(1, 3 * H, H), w(1, 6 * H)], 2, 18),
    ("gru_sequence_lens", "GRU", {"hidden_size": H, "linear_before_reset": 1},
     [(S, B, IN), w(1, 3 * H, IN), w(1, 3 * H, H), w(1, 6 * H), LENS], 2, 18),
    ("rnn_tanh", "RNN", {"hidden_size": H}, [(S, B, IN), w(1, H, IN), w(1, H, H), w(1, 2 * H)], 2, 18),
    ("rnn_relu_bidirectional", "RNN", {"hidden_size": H, "activations": ["Relu", "Relu"], "direction": "bidirectional"},
     [(S, B, IN), w(2, H, IN), w(2, H, H)], 2, 18),
    ("rnn_leaky_loop", "RNN", {"hidden_size": H, "activations": ["LeakyRelu"], "activation_alpha": [0.1]},
     [(S, B, IN), w(1, H, IN), w(1, H, H)], 2, 18),
]

LAYER = {"lstm": "LSTM", "lstm_bidirectional_states": "LSTM", "lstm_sequence_lens": "LSTM",
         "lstm_batch_first": "LSTM", "gru_linear_before_reset": "GRU", "gru_sequence_lens": "GRU",
         "rnn_tanh": "RNN", "rnn_relu_bidirectional": "RNN"}


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_recurrent_matches_onnxruntime(row, torch):
    # onnxruntime refuses batch-first recurrent layers: onnx's reference evaluator checks those
    gm = check(row, torch, reference="onnx" if row[2].get("layout") else None)
    layers = [type(m).__name__ for m in gm.modules() if isinstance(m, torch.nn.RNNBase)]
    assert layers == ([LAYER[row[0]]] if row[0] in LAYER else [])


def test_recurrent_model_py_reloads(torch, tmp_path):
    """The saved model.py holds nn.LSTM and reloads with the same outputs."""
    import irbridge
    from irbridge.exporters.torch import load_saved
    from tests.exporters.torch_op_rows import build

    model, feeds = build(*ROWS[1][1:4], n_outputs=3)
    gm = irbridge.export(irbridge.normalize(irbridge.load(model)), "torch", check=False)
    irbridge.save(gm, tmp_path / "m")
    assert "nn.LSTM(" in (tmp_path / "m" / "model.py").read_text()
    again = load_saved(tmp_path / "m")
    x = torch.from_numpy(feeds["in0"])
    with torch.no_grad():
        for a, b in zip(gm(x), again(x)):
            torch.testing.assert_close(a, b)
