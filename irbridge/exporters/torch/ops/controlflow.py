"""Control flow: If, Loop and Scan as Python `if` / `for` / `while` in model.py.

Each node becomes a small module (see controlflow.py) whose subgraphs are its methods and whose
`forward` is the loop or branch written out, e.g. for a Loop with a trip count, one carried
value and one scan output:

    def forward(self, trip_count, h, w):
        ys = []
        for i in range(int(trip_count)):
            _, h, y = self.body(torch.tensor(i), torch.tensor(True), h, w)
            ys.append(y)
        return h, torch.stack(ys)
"""

from __future__ import annotations

from ..builder import TORCH_DTYPES
from ..controlflow import ControlFlow, arg_names, captures, check_tensor_types
from ..registry import Unsupported, converter


def _graph(ctx, name):
    return ctx.node.attributes[name].value


def _targets(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names)


def _stacked(steps: str, out, axis: int = 0) -> str:
    """The scan output from its per-step list; no steps gives what onnxruntime gives: an empty
    tensor whose other dims are the body output's static sizes (0 where they are free)."""
    if out.dtype is None or TORCH_DTYPES.get(out.dtype) is None or out.shape is None:
        return f"torch.stack({steps}, {axis})"
    dims = [d if isinstance(d, int) else 0 for d in out.shape]
    dims.insert(axis % (len(dims) + 1), 0)
    return (f"(torch.stack({steps}, {axis}) if {steps} else "
            f"torch.zeros({tuple(dims)}, dtype={TORCH_DTYPES[out.dtype]}))")


def _call(flow: ControlFlow, ctx, args: list, n_out: int):
    node = flow.finish(flow.forward_text, args)
    return ctx.split(node, n_out) if n_out > 1 else node


@converter("If", since=1)
def if_(ctx):
    check_tensor_types(ctx.node)
    branches = [_graph(ctx, "then_branch"), _graph(ctx, "else_branch")]
    captured = captures(branches)
    flow = ControlFlow(ctx, "If")
    for name, g in zip(("then_branch", "else_branch"), branches):
        flow.method(name, g, captured)
    caps = arg_names(captured, set())
    args = ", ".join(["cond"] + caps)
    inner = ", ".join(caps)
    flow.forward_text = (f"def forward(self, {args}):\n"
                         f"    if bool(cond):\n"
                         f"        return self.then_branch({inner})\n"
                         f"    return self.else_branch({inner})\n")
    return _call(flow, ctx, [ctx.x(0)] + [ctx.builder.value_of(v) for v in captured], len(ctx.node.outputs))


@converter("Loop", since=1)
def loop(ctx):
    check_tensor_types(ctx.node)
    body = _graph(ctx, "body")
    n_carried = ctx.num_inputs - 2
    n_scan = len(body.outputs) - 1 - n_carried
    has_trip, has_cond = ctx.has_input(0), ctx.has_input(1)
    captured = captures([body])
    flow = ControlFlow(ctx, "Loop")
    flow.method("body", body, captured)
    taken: set[str] = set()
    state = arg_names([ctx.out_name(k) or f"v{k}" for k in range(n_carried)], taken)  # the final values' names
    caps = arg_names(captured, taken)
    scans = arg_names([ctx.out_name(n_carried + k) or f"scan{k}" for k in range(n_scan)], taken)
    steps = [f"{s}_step" for s in scans]
    params = (["trip_count"] if has_trip else []) + (["cond"] if has_cond else []) + state + caps
    lines = [f"def forward(self, {', '.join(params)}):"]
    lines += [f"    {s} = []" for s in scans]
    cond_in = "cond" if has_cond else "torch.tensor(True)"
    call = f"self.body(torch.tensor(i), {', '.join([cond_in] + state + caps)})"
    outs = _targets([("cond" if has_cond else "_")] + state + steps)
    if has_cond:
        test = "i < int(trip_count) and bool(cond)" if has_trip else "bool(cond)"
        lines += ["    i = 0", f"    while {test}:", f"        {outs} = {call}"]
        lines += [f"        {s}.append({t})" for s, t in zip(scans, steps)]
        lines += ["        i += 1"]
    else:
        limit = "int(trip_count)" if has_trip else None
        if limit is None:
            raise Unsupported("Loop with neither a trip count nor a condition never ends")
        lines += [f"    for i in range({limit}):", f"        {outs} = {call}"]
        lines += [f"        {s}.append({t})" for s, t in zip(scans, steps)]
    results = state + [_stacked(s, out) for s, out in zip(scans, body.outputs[1 + n_carried:])]
    lines.append(f"    return {_targets(results)}" if results else "    return None")
    flow.forward_text = "\n".join(lines) + "\n"
    args = ([ctx.x(0)] if has_trip else []) + ([ctx.x(1)] if has_cond else [])
    args += [ctx.x(2 + k) for k in range(n_carried)] + [ctx.builder.value_of(v) for v in captured]
    if n_scan < 0:
        raise Unsupported("Loop body has fewer outputs than carried values")
    return _call(flow, ctx, args, n_carried + n_scan)


@converter("Scan", since=9)
def scan(ctx):
    check_tensor_types(ctx.node)
    body = _graph(ctx, "body")
    m = int(ctx.attr("num_scan_inputs"))
    n_state = ctx.num_inputs - m
    k_out = len(body.outputs) - n_state
    in_axes = list(ctx.attr("scan_input_axes", None) or [0] * m)
    in_dirs = list(ctx.attr("scan_input_directions", None) or [0] * m)
    out_axes = list(ctx.attr("scan_output_axes", None) or [0] * k_out)
    out_dirs = list(ctx.attr("scan_output_directions", None) or [0] * k_out)
    captured = captures([body])
    flow = ControlFlow(ctx, "Scan")
    flow.method("body", body, captured)
    taken: set[str] = set()
    state = arg_names([ctx.out_name(k) or f"state{k}" for k in range(n_state)], taken)
    xs = arg_names([ctx.value(n_state + k) for k in range(m)], taken)
    caps = arg_names(captured, taken)
    ys = arg_names([ctx.out_name(n_state + k) or f"scan{k}" for k in range(k_out)], taken)
    steps = [f"{y}_step" for y in ys]
    lines = [f"def forward(self, {', '.join(state + xs + caps)}):"]
    lines += [f"    {y} = []" for y in ys]
    lines.append(f"    for t in range({xs[0]}.shape[{in_axes[0]}]):")
    slices = [f"{x}.select({a}, {'-1 - t' if d else 't'})" for x, a, d in zip(xs, in_axes, in_dirs)]
    lines.append(f"        {_targets(state + steps)} = self.body({', '.join(state + slices + caps)})")
    lines += [f"        {y}.append({s})" for y, s in zip(ys, steps)]
    results = state + [_stacked(f"{y}[::-1]" if d else y, out, a)
                       for y, a, d, out in zip(ys, out_axes, out_dirs, body.outputs[n_state:])]
    lines.append(f"    return {_targets(results)}")
    flow.forward_text = "\n".join(lines) + "\n"
    args = [ctx.x(k) for k in range(ctx.num_inputs)] + [ctx.builder.value_of(v) for v in captured]
    return _call(flow, ctx, args, n_state + k_out)
