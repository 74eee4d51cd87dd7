"""ONNX LSTM, GRU and RNN -> keras.layers.LSTM / GRU / SimpleRNN, in `Bidirectional` when
direction="bidirectional" and with go_backwards when direction="reverse".

The ONNX weights are re-laid out for Keras: W/R/B of an LSTM hold their gates in the order
[i o f c], Keras in [i f c o]; GRU gates are [z r h] in both, and linear_before_reset=1 is
Keras' reset_after=True (separate input and recurrent biases, shape (2, 3H)); the two ONNX
biases Wb + Rb are otherwise one Keras bias. Keras RNNs run batch-major (batch, time,
feature): a time-major input (layout=0) is transposed at the boundary, and the ONNX outputs
Y (seq, dirs, batch, hidden), Y_h and Y_c (dirs, batch, hidden) are rebuilt with keras.ops
in the exact ONNX shapes (layout=1: batch first). `sequence_lens` becomes the layer's mask
(padded steps output zeros and keep the state, as in ONNX).

PyTorch's export wraps each nn.LSTM/GRU/RNN layer in transposes and reshapes:

    x [batch, seq, f] -> Transpose(1,0,2) -> LSTM -> Y -> Transpose(0,2,1,3) -> Reshape([0,0,-1])
                                                     (unidirectional: Y -> Squeeze(1))

The converter reads the batch-major source of the first Transpose directly and computes the
Reshape (or Squeeze) itself, held batch-major (`irbridge.physical` 1,0,2) for the next RNN
or for a Transpose(1,0,2) that then costs nothing: the Keras model is the stack of
(Bidirectional) RNN layers a Keras user would write, with no transposes in between.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .... import keras_layers, provenance
from .. import builder
from ..builder import same_dim
from ..registry import Unsupported, converter

_LAYER = {"LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU, "RNN": keras.layers.SimpleRNN}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
# ONNX activations with their default parameters that are a Keras activation exactly
_ACTIVATION = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "softsign": "softsign",
               "softplus": "softplus", "elu": "elu"}
_LSTM_ORDER = [0, 2, 3, 1]  # Keras block k is ONNX block _LSTM_ORDER[k]: [i f c o] from [i o f c]
_BATCH_MAJOR = (1, 0, 2)  # a time-major (seq, batch, f) value held batch-major


def _activations(ctx, op: str, dirs: int) -> dict:
    """Keras activation arguments from the ONNX `activations` (the same in both directions)."""
    if ctx.attr("activation_alpha") or ctx.attr("activation_beta"):
        raise Unsupported("activation_alpha/activation_beta (Keras activations take no parameters)")
    names = ctx.attr("activations") or _DEFAULT_ACTIVATIONS[op] * dirs
    per_dir = len(_DEFAULT_ACTIVATIONS[op])
    if len(names) != per_dir * dirs:
        raise Unsupported(f"activations {names}: {per_dir} per direction expected")
    if names[per_dir:] and [n.lower() for n in names[per_dir:]] != [n.lower() for n in names[:per_dir]]:
        raise Unsupported(f"activations {names}: the directions of a Bidirectional layer share theirs")
    keras_names = []
    for name in names[:per_dir]:
        if name.lower() not in _ACTIVATION:
            raise Unsupported(f"the {name} activation (Keras RNNs take sigmoid, tanh, relu, softsign, "
                              "softplus, elu)")
        keras_names.append(_ACTIVATION[name.lower()])
    if op == "RNN":
        return {"activation": keras_names[0]}
    if op == "LSTM" and keras_names[1] != keras_names[2]:
        raise Unsupported("an LSTM whose cell and output activations differ (Keras has one `activation`)")
    return {"recurrent_activation": keras_names[0], "activation": keras_names[1]}


def _weights(ctx, op: str, dirs: int, hidden: int, reset_after: bool) -> list[list[np.ndarray]]:
    """Per direction, the Keras [kernel, recurrent_kernel(, bias)] from the ONNX W, R, B."""
    w, r = ctx.const(1), ctx.const(2)
    b = ctx.const(3) if ctx.has_input(3) else None
    if w is None or r is None or (ctx.has_input(3) and b is None):
        raise Unsupported("weights W, R or B computed at run time (Keras layers hold constant weights)")
    gates = _GATES[op]
    out = []
    for d in range(dirs):
        wd, rd = w[d].astype(np.float32), r[d].astype(np.float32)
        bias = None
        if b is not None:
            wb, rb = b[d, :gates * hidden].astype(np.float32), b[d, gates * hidden:].astype(np.float32)
            bias = np.stack([wb, rb]) if reset_after else wb + rb
        if op == "LSTM":
            order = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in _LSTM_ORDER])
            wd, rd = wd[order], rd[order]
            bias = None if bias is None else bias[order]
        out.append([wd.T, rd.T] + ([bias] if bias is not None else []))
    return out


def _check_unsupported(ctx, op: str) -> None:
    if ctx.attr("clip") is not None:
        raise Unsupported("clip (Keras RNN cells do not clip their gate inputs)")
    if op == "LSTM":
        if ctx.attr("input_forget", 0):
            raise Unsupported("input_forget=1 (coupled input and forget gates)")
        if ctx.has_input(7):
            p = ctx.const(7)
            if p is None or np.any(p):
                raise Unsupported("peephole weights P (Keras LSTM has no peepholes)")


def _held(ctx, v):
    """(keras tensor, perm) the builder holds value `v` in."""
    if v.name not in ctx.b.env:
        raise Unsupported(f"input {v.name!r} comes from an unconverted node")
    return ctx.b.env[v.name]


def _sequence(ctx, layout: int):
    """The input X batch-major (batch, seq, feature) as a Keras tensor."""
    x = ctx.node.inputs[0]
    if ctx.rank(0) != 3:
        raise Unsupported("an input X that is not 3-D")
    if layout == 1:
        return ctx.x(0, (0, 1, 2))
    src = _time_major_of(x)
    if src is not None and src.name in ctx.b.env and tuple(ctx.b.env[src.name][1]) == (0, 1, 2):
        return ctx.b.env[src.name][0]  # PyTorch's Transpose of a batch-major input: read that
    t, perm = _held(ctx, x)
    if tuple(perm) == _BATCH_MAJOR:
        return t
    if tuple(perm) != (0, 1, 2):
        raise Unsupported(f"an input X held in layout {perm}")
    return ops.transpose(t, _BATCH_MAJOR)


def _time_major_of(x):
    """The batch-major value that `x` is the Transpose(1, 0, 2) of, or None."""
    src = x.producer()
    if src is None or src.op_type != "Transpose" or src.domain \
            or list(src.attributes.get_ints("perm", [])) != [1, 0, 2]:
        return None
    return src.inputs[0]


def _zero_state(v) -> bool:
    """Whether `v` is all zeros by construction: PyTorch's default initial state, a
    ConstantOfShape(0) of the live batch (`Shape(x) -> Gather -> ... -> ConstantOfShape`),
    sliced per layer."""
    node = v.producer() if v is not None else None
    while node is not None and node.op_type in ("Slice", "Identity", "Expand") and not node.domain:
        node = node.inputs[0].producer()
    if node is None or node.op_type != "ConstantOfShape" or node.domain:
        return False
    value = node.attributes.get("value")
    return value is None or not np.any(value.value.numpy())


def _initial_states(ctx, op: str, dirs: int, layout: int, x, hidden: int) -> list | None:
    """Keras initial states [h(, c)] per direction (flattened for Bidirectional), or None."""
    slots = [5, 6] if op == "LSTM" else [5]
    if not any(ctx.has_input(i) and not _zero_state(ctx.node.inputs[i]) for i in slots):
        return None
    batch = None
    states: list[list] = [[None] * len(slots) for _ in range(dirs)]
    for k, i in enumerate(slots):
        if not ctx.has_input(i) or _zero_state(ctx.node.inputs[i]):
            continue
        c = ctx.const(i)
        if c is not None:
            if not np.any(c):
                continue
            c = np.asarray(c, np.float32)
            for d in range(dirs):
                a = c[d] if layout == 0 else c[:, d]
                if np.all(a == a[:1]):
                    a = a[:1]  # the same state for every sequence: the batch stays free
                if batch is None:
                    batch = ops.zeros_like(x[:, 0, :1])  # (batch, 1)
                states[d][k] = ctx.layer(keras_layers.ConstantOp, batch, weights=[a], op="add",
                                         shape=list(a.shape), name_suffix=f"_{'hc'[k]}0_{d}")
        else:
            if ctx.rank(i) != 3:
                raise Unsupported("an initial state that is not 3-D")
            t = ctx.x(i, (0, 1, 2))
            for d in range(dirs):
                states[d][k] = t[d] if layout == 0 else t[:, d]
    zeros = None
    flat = []
    for d in range(dirs):
        for k in range(len(slots)):
            if states[d][k] is None:
                if zeros is None:
                    zeros = ops.zeros_like(ops.repeat(x[:, 0, :1], hidden, axis=1))  # (batch, hidden)
                states[d][k] = zeros
            flat.append(states[d][k])
    return flat


def _mask(ctx, x):
    """The (batch, seq) mask of ONNX sequence_lens (steps before each length), or None."""
    if not ctx.has_input(4):
        return None
    lens = ctx.const(4)
    steps = ops.cumsum(ops.ones_like(x[:, :, 0]), axis=1)  # 1, 2, ... seq for every sequence
    if lens is None:
        return ops.less_equal(steps, ops.expand_dims(ops.cast(ctx.x(4, (0,)), steps.dtype), 1))
    lens = np.ravel(lens).astype(np.float32)
    if x.shape[1] is not None and np.all(lens == x.shape[1]):
        return None
    past = ctx.layer(keras_layers.ConstantOp, steps, weights=[lens[:, None]], op="subtract",
                     shape=[len(lens), 1], name_suffix="_sequence_lens")  # step - length
    return ops.less_equal(past, 0.0)


def _used(v) -> bool:
    return v is not None and v.name != "" and (bool(list(v.uses())) or v.is_graph_output())


def _torch_merge(ctx, dirs: int, hidden: int):
    """PyTorch's Squeeze(1) (one direction) or Transpose(0,2,1,3) + Reshape([0,0,-1]) of Y,
    which yield the (seq, batch, dirs*hidden) output of nn.LSTM: (nodes, value) or None."""
    y = ctx.node.outputs[0]
    if y.is_graph_output() or len(list(y.uses())) != 1:
        return None
    first, _ = next(iter(y.uses()))
    if first.domain:
        return None
    if dirs == 1 and first.op_type == "Squeeze" and len(first.inputs) > 1 and first.inputs[1] is not None \
            and first.inputs[1].const_value is not None and list(first.inputs[1].const_value.numpy()) == [1]:
        return [first], first.outputs[0]
    if first.op_type != "Transpose" or list(first.attributes.get_ints("perm", [])) != [0, 2, 1, 3]:
        return None
    t = first.outputs[0]
    if t.is_graph_output() or len(list(t.uses())) != 1:
        return None
    reshape, _ = next(iter(t.uses()))
    out = reshape.outputs[0]
    if reshape.op_type != "Reshape" or reshape.domain or out.shape is None or len(out.shape) != 3 \
            or out.shape[2] != dirs * hidden:
        return None
    shape = reshape.inputs[1].const_value
    zero_zero = shape is not None and list(shape.numpy()) == [0, 0, -1]
    if not zero_zero and not (y.shape is not None and same_dim(out.shape[0], y.shape[0])
                              and same_dim(out.shape[1], y.shape[2])):
        return None
    return [first, reshape], out


def _keeps_batch_major(v) -> bool:
    """Whether every reader of `v` takes it batch-major at no cost (an RNN, a Transpose(1,0,2))."""
    if v.is_graph_output():
        return False
    for node, i in v.uses():
        if node.domain:
            return False
        if node.op_type in _LAYER and i == 0 and node.attributes.get_int("layout", 0) == 0:
            continue
        if node.op_type == "Transpose" and list(node.attributes.get_ints("perm", [])) == [1, 0, 2]:
            continue
        return False
    return True


_SLOTS = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c"]


def _runtime_weights(ctx, op: str, dirs: int):
    """An RNN whose W/R/B are computed at run time (onnx's node tests feed them as inputs):
    irbridge's OnnxRecurrent layer, the ONNX recurrence written with keras.ops."""
    if ctx.attr("activation_alpha") or ctx.attr("activation_beta"):
        raise Unsupported("activation_alpha/activation_beta (Keras activations take no parameters)")
    names = ctx.attr("activations") or _DEFAULT_ACTIVATIONS[op] * dirs
    if any(n.lower() not in _ACTIVATION for n in names):
        raise Unsupported(f"activations {names} (Keras has sigmoid, tanh, relu, softsign, softplus, elu)")
    slots, live = [], []
    for i, slot in enumerate(_SLOTS[:7 if op == "LSTM" else 6]):
        if not ctx.has_input(i):
            continue
        if ctx.const(i) is not None:
            raise Unsupported("run-time weights W/R together with constant inputs")
        slots.append(slot)
        live.append(ctx.x(i, tuple(range(ctx.rank(i)))))
    layer = keras_layers.OnnxRecurrent(
        op=op, hidden=int(ctx.attr("hidden_size")), direction=ctx.attr("direction", "forward"),
        activations=[_ACTIVATION[n.lower()] for n in names], layout=ctx.attr("layout", 0),
        linear_before_reset=ctx.attr("linear_before_reset", 0) if op == "GRU" else 0, slots=slots,
        name=ctx.b.fresh(provenance.source_of(ctx.node)), trainable=ctx.b.trainable)
    return tuple(layer(live))


def _rnn(ctx, op: str):
    _check_unsupported(ctx, op)
    if ctx.const(1) is None or ctx.const(2) is None:
        return _runtime_weights(ctx, op, 2 if ctx.attr("direction", "forward") == "bidirectional" else 1)
    hidden = ctx.attr("hidden_size")
    direction = ctx.attr("direction", "forward")
    layout = ctx.attr("layout", 0)
    dirs = 2 if direction == "bidirectional" else 1
    if hidden is None:
        w = ctx.const(1)
        hidden = None if w is None else w.shape[1] // _GATES[op]
    lbr = ctx.attr("linear_before_reset", 0) if op == "GRU" else 0
    weights = _weights(ctx, op, dirs, int(hidden), bool(lbr))
    kwargs = _activations(ctx, op, dirs)
    outs = ctx.node.outputs
    want_state = any(_used(v) for v in outs[1:])
    x = _sequence(ctx, layout)
    states = _initial_states(ctx, op, dirs, layout, x, int(hidden))
    mask = _mask(ctx, x)
    merged = _torch_merge(ctx, dirs, int(hidden)) if layout == 0 else None
    kwargs.update(units=int(hidden), return_sequences=True, return_state=want_state,
                  use_bias=len(weights[0]) == 3, go_backwards=direction == "reverse",
                  zero_output_for_mask=mask is not None, trainable=ctx.b.trainable)
    if op == "GRU":
        kwargs["reset_after"] = bool(lbr)
    name = ctx.b.fresh(provenance.source_of(ctx.node))
    layer = _LAYER[op](name=name, **kwargs)
    if dirs == 2:
        layer = keras.layers.Bidirectional(layer, merge_mode="concat" if merged else None, name=name,
                                           trainable=ctx.b.trainable)
    call = {k: v for k, v in (("initial_state", states), ("mask", mask)) if v is not None}
    result = layer(x, **call)
    layer.set_weights([w for d in weights for w in d])
    result = list(result) if isinstance(result, (list, tuple)) else [result]
    n_seq = 1 if dirs == 1 or merged else 2
    ys, hs = result[:n_seq], result[n_seq:]
    if direction == "reverse":
        ys = [ops.flip(ys[0], axis=1)]  # Keras returns a go_backwards sequence in its own order
    if merged:
        nodes, value = merged
        y_bm = ys[0]  # (batch, seq, dirs * hidden)
        held = _BATCH_MAJOR if _keeps_batch_major(value) else (0, 1, 2)
        ctx.b.env[value.name] = (y_bm if held == _BATCH_MAJOR else ops.transpose(y_bm, _BATCH_MAJOR), held)
        for n in nodes:
            ctx.b.absorbed[n] = n.outputs[0]
        if dirs == 2:  # Y itself, from the concatenated directions
            ys = [y_bm[..., :hidden], y_bm[..., hidden:]]
    y = ops.stack(ys, axis=2) if dirs == 2 else ops.expand_dims(ys[0], 2)  # (batch, seq, dirs, hidden)
    results = [ops.transpose(y, (1, 2, 0, 3)) if layout == 0 else y]
    if want_state:
        per_dir = len(hs) // dirs
        for k in range(per_dir):  # Y_h, then Y_c: (dirs, batch, hidden) or (batch, dirs, hidden)
            results.append(ops.stack([hs[d * per_dir + k] for d in range(dirs)], axis=0 if layout == 0 else 1))
    return tuple(results)


@converter("LSTM", since=7)
def lstm(ctx):
    return _rnn(ctx, "LSTM")


@converter("GRU", since=7)
def gru(ctx):
    return _rnn(ctx, "GRU")


@converter("RNN", since=7)
def rnn(ctx):
    return _rnn(ctx, "RNN")


def _merge_shape_constant(node) -> set:
    """The Constant node giving the [0, 0, -1] target of PyTorch's Transpose + Reshape merge of
    Y's directions (the converter does that merge itself, see `_torch_merge`), if only it reads it."""
    y = node.outputs[0]
    uses = list(y.uses())
    if len(uses) != 1 or uses[0][0].op_type != "Transpose":
        return set()
    uses = list(uses[0][0].outputs[0].uses())
    if len(uses) != 1 or uses[0][0].op_type != "Reshape" or len(uses[0][0].inputs) < 2:
        return set()
    const = uses[0][0].inputs[1].producer()
    if const is None or const.op_type != "Constant" or len(list(const.outputs[0].uses())) != 1:
        return set()
    return {const}


def prepare(b, graph) -> None:
    """Before the build: the nodes the RNN converters do the work of, so that the builder
    skips them (`b.dropped`): PyTorch's Transpose(1, 0, 2) of a batch-major input to an RNN,
    and its computation of the all-zero initial states from the live batch
    (Shape -> Gather -> Unsqueeze -> Concat -> ConstantOfShape -> Slice)."""
    dropped: set = set()
    zero_states: set = set()
    for node in graph:
        if node.op_type not in _LAYER or node.domain:
            continue
        x = node.inputs[0]
        if node.attributes.get_int("layout", 0) == 0 and _time_major_of(x) is not None \
                and not x.is_graph_output() and all(n.op_type in _LAYER and i == 0 for n, i in x.uses()):
            dropped.add(x.producer())
        zero_states |= {v for v in node.inputs[5:7] if v is not None and _zero_state(v)}
        dropped |= _merge_shape_constant(node)

    read = {t.inputs[0] for t in dropped}  # the RNNs read these batch-major sources directly

    def only_for_states(v) -> bool:
        uses = list(v.uses())
        return not v.is_graph_output() and v not in read and all(
            r in dropped or (v in zero_states and r.op_type in _LAYER and not r.domain and i in (5, 6))
            for r, i in uses)

    for node in reversed(list(graph)):  # the zero states' producers that nothing else reads
        if node.outputs and any(v.uses() for v in node.outputs) and all(only_for_states(v) for v in node.outputs) \
                and node not in dropped and (node.op_type != "Transpose"):
            dropped.add(node)
    b.dropped |= dropped


if hasattr(builder, "fuser"):  # run before the nodes are converted
    builder.fuser(prepare)
