"""Loss ops: NegativeLogLikelihoodLoss as `F.nll_loss`, SoftmaxCrossEntropyLoss as
`F.log_softmax` + `F.nll_loss` (class weights, ignore_index, reduction none/sum/mean: the
weighted mean divides by the summed weights of the counted targets, as ONNX defines)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import Unsupported, converter


def _reduction(ctx) -> str:
    r = ctx.attr("reduction", "mean")
    r = r.decode() if isinstance(r, bytes) else r
    if r not in ("none", "sum", "mean"):
        raise Unsupported(f"reduction {r!r}")
    return r


def _nll(ctx, log_prob):
    target = ctx.x(1)
    if ctx.dtype(1) != torch.int64:
        target = ctx.builder.create("call_method", "long", (target,), {}, None)
    ignore = ctx.attr("ignore_index", None)
    kwargs = {"reduction": _reduction(ctx)}
    if ignore is not None:
        kwargs["ignore_index"] = int(ignore)
    if ctx.has_input(2):
        kwargs["weight"] = ctx.x(2)
    return ctx.call(F.nll_loss, log_prob, target, **kwargs)


@converter("NegativeLogLikelihoodLoss", since=12)
def nll_loss(ctx):
    return _nll(ctx, ctx.x(0))


@converter("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(ctx):
    log_prob = ctx.builder.create("call_function", F.log_softmax, (ctx.x(0),), {"dim": 1},
                                  ctx.out_name(1) or "log_prob")
    return _nll(ctx, log_prob), log_prob
