"""verify's runner over a GraphModule made by this exporter (registered in __init__)."""

from __future__ import annotations

import numpy as np

from ...verify.runners import Runner


def accepts(obj) -> bool:
    return hasattr(obj, "irbridge_values")


def torch_runner(gm) -> Runner:
    """Feeds by ONNX input name; every layer's value captured for layerwise checks, and each
    call module fed the reference's inputs for the local error."""
    import torch

    names_in, names_out = gm.irbridge_inputs, gm.irbridge_outputs

    def to_torch(feeds):
        return [torch.from_numpy(np.array(feeds[n])) for n in names_in]

    def run(feeds):
        with torch.no_grad():
            out = gm(*to_torch(feeds))
        out = out if isinstance(out, tuple) else (out,)
        return {n: _np(o) for n, o in zip(names_out, out)}

    by_node = {node_name: value for value, node_name in gm.irbridge_values.items()}

    def values(feeds, reference=None):
        captured: dict[str, np.ndarray] = {}

        class Capture(torch.fx.Interpreter):
            def run_node(self, n):
                if reference is not None and n.op in ("call_module", "call_function", "call_method"):
                    args, kwargs = self.fetch_args_kwargs_from_env(n)
                    args = _substitute(args, n.args, by_node, reference, torch)
                    result = getattr(self, n.op)(n.target, args, kwargs)
                else:
                    result = super().run_node(n)
                if n.name in by_node and isinstance(result, torch.Tensor):
                    # a copy: a later in-place layer (ReLU(inplace=True)) may overwrite it
                    captured[by_node[n.name]] = np.array(_np(result))
                return result

        with torch.no_grad():
            Capture(gm).run(*to_torch(feeds))
        return captured

    return Runner(names_in, names_out, run, getattr(gm, "irbridge_specs_in", None), values,
                  gm.irbridge_layers, local=True)


def _substitute(args, arg_nodes, by_node, reference, torch):
    """Replace arguments that are graph values the reference also computed by its values."""
    import torch.fx as fx

    def sub(a, n):
        if isinstance(n, fx.Node) and by_node.get(n.name) in reference:
            return torch.from_numpy(np.array(reference[by_node[n.name]]))
        if isinstance(n, (list, tuple)) and isinstance(a, (list, tuple)):
            return type(a)(sub(x, y) for x, y in zip(a, n))
        return a

    return tuple(sub(a, n) for a, n in zip(args, arg_nodes))


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy()
