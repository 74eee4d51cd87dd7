"""drop-stale-dims: forget recorded sizes that the graph's free input dims contradict."""

from __future__ import annotations

import onnx  # noqa: TID251 - onnx's shape inference is the independent reading used here
import onnx_ir as ir

from . import register

try:  # onnx_ir's reading without the large weights (private; the whole model if it moves)
    from onnx_ir.passes.common._c_api_utils import call_onnx_api as _weightless_call
except ImportError:  # pragma: no cover - another onnx_ir
    def _weightless_call(func, model: ir.Model):
        return func(ir.serde.serialize_model(model))

# sizes a free input dim takes in the two concrete readings (any two distinct sizes would do;
# multiples of 32 keep patch and stride arithmetic whole)
PROBE_SIZES = (64, 96)
_UNNAMED = "irbridge_free_{}"  # the symbolic reading's name for the k-th unnamed free input dim


@register("drop-stale-dims")
class DropStaleDims(ir.passes.InPlacePass):
    """Forget recorded sizes that the graph's free input dims contradict.

    An exporter may record intermediate shapes (value_info) at the example's sizes although an
    input dim is free (the dynamo exporter's LSTM tagger: the sequence is free at the input, yet
    the tagger's output is recorded as [batch, 8, 48]). Exporters that trust such a size build
    a model that runs at the example's length only. ONNX shape inference is run three times on
    the graph without its recorded intermediate shapes: with the free input dims symbolic, and
    with them at two different sizes. A recorded size is stale where the symbolic reading gives
    an input's dim or the two concrete readings differ; it becomes that input dim (or an unnamed
    free dim). Sizes no reading contradicts are kept; the inputs are never changed.

        input_ids [batch, sequence] -> ... -> getitem [batch, 8, 48] -> MatMul -> output [batch, 8, 5]
      =>
        input_ids [batch, sequence] -> ... -> getitem [batch, sequence, 48] -> ... -> output [batch, sequence, 5]
    """

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        free = _free_axes(model)
        if not free:
            return ir.passes.PassResult(model, False)
        symbolic = _reading(model, free, None)
        probes = [_reading(model, free, size) for size in PROBE_SIZES]
        names = {str(d.value) for v in model.graph.inputs if v.shape is not None
                 for d in v.shape if isinstance(d, ir.SymbolicDim) and d.value}
        free_names = names | {_UNNAMED.format(k) for k in range(sum(map(len, free.values())))}
        modified = False
        for node in model.graph:
            for value in node.outputs:
                shape = value.shape
                if shape is None:
                    continue
                new = list(shape)
                for k, d in enumerate(shape):
                    if not isinstance(d, int):
                        continue
                    s = _dim(symbolic, value.name, k, len(shape))
                    a, b = (_dim(p, value.name, k, len(shape)) for p in probes)
                    if s in free_names or (isinstance(a, int) and isinstance(b, int) and a != b):
                        new[k] = ir.SymbolicDim(s if s in names else None)
                if new != list(shape):
                    value.shape = ir.Shape(new)
                    modified = True
        return ir.passes.PassResult(model, modified)


def _free_axes(model: ir.Model) -> dict[str, list[int]]:
    """{graph input: its free axes} (initializers excluded)."""
    out = {}
    for v in model.graph.inputs:
        if v.name in model.graph.initializers or v.shape is None:
            continue
        axes = [k for k, d in enumerate(v.shape) if not isinstance(d, int)]
        if axes:
            out[v.name] = axes
    return out


def _reading(model: ir.Model, free: dict[str, list[int]], size: int | None) -> dict[str, list]:
    """{value name: its dims (int, dim name or None)} as ONNX shape inference reads the graph
    without its recorded intermediate shapes, the free input dims at `size` (None: symbolic)."""

    def infer(proto: onnx.ModelProto) -> onnx.ModelProto:
        g, unnamed = proto.graph, 0
        for i in g.input:
            for k in free.get(i.name, ()):
                dim = i.type.tensor_type.shape.dim[k]
                if size is not None:
                    dim.Clear()
                    dim.dim_value = size
                elif not dim.dim_param:
                    dim.dim_param = _UNNAMED.format(unnamed)
                    unnamed += 1
        del g.value_info[:]
        for o in g.output:
            o.type.tensor_type.ClearField("shape")
        return onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=True)

    try:
        proto = _weightless_call(infer, model)
    except Exception:  # noqa: BLE001 - no reading, no evidence: every recorded size is kept
        return {}
    out = {}
    for vi in list(proto.graph.value_info) + list(proto.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    return out


def _dim(reading: dict, name: str, axis: int, rank: int):
    dims = reading.get(name)
    return dims[axis] if dims is not None and len(dims) == rank else None
