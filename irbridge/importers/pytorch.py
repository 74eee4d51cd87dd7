"""PyTorch importer: a torch.nn.Module plus example inputs, through torch.onnx.export(dynamo=True).

Provenance comes from the exporter's name scopes: every node is tagged with the module path
of the layer it came from (`features.0`) and that layer's class (`Conv2d`); functional calls
at the top level are tagged with the aten op (`view`).

The graph's initializers share memory with the module's parameters (no copy is made):
convert before training the module further, or save the graph first.
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import warnings

import numpy as np
import onnx_ir as ir

from .. import provenance
from ..errors import InputError, UnsupportedError


def load(module, weights=None, inputs=None) -> ir.Model:
    import torch

    if weights is not None:
        raise InputError("a torch.nn.Module holds its own weights; drop the `weights` argument.")
    if inputs is None:
        raise InputError(
            f"a torch.nn.Module ({type(module).__name__}) needs example inputs to be traced: "
            "pass inputs=(tensor, ...) or inputs={'x': (1, 3, 224, 224)}."
        )
    args, names = _example_args(inputs, torch)
    modes = {m: m.training for m in module.modules()}
    module.eval()  # inference graph; the caller's train/eval flags are restored below
    try:
        with _quiet():
            program = torch.onnx.export(
                module, args, dynamo=True, optimize=False, input_names=names, verbose=False
            )
    except Exception as e:
        raise UnsupportedError(
            f"torch.onnx.export could not trace {type(module).__name__}: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}. Make the forward traceable "
            "(no data-dependent Python control flow) or export it to ONNX yourself."
        ) from e
    finally:
        for m, training in modes.items():
            m.training = training
    model = program.model
    for node in model.graph:
        _tag(node)
    _drop_synthesized_bias(model, module)
    return model


def _drop_synthesized_bias(model: ir.Model, module) -> None:
    """torch.onnx gives a Conv of a layer with `bias=False` a computed all-zero bias
    (Expand(CastLike(0), [C])). Drop it, so that the port has the source's parameters:
    `nn.Conv2d(..., bias=False)` again, not a zero bias to load, save and add.

        before: Conv(x, features.0.weight, Expand(CastLike(Constant 0), [32]))
        after:  Conv(x, features.0.weight)
    """
    for node in model.graph:
        if node.op_type not in ("Conv", "ConvTranspose") or node.domain or len(node.inputs) < 3:
            continue
        bias = node.inputs[2]
        if bias is None or bias.producer() is None:  # none, or a stored parameter
            continue
        try:
            layer = module.get_submodule(node.metadata_props.get(provenance.SOURCE, ""))
        except AttributeError:
            continue
        if getattr(layer, "bias", True) is None:
            node.resize_inputs(2)


def _example_args(inputs, torch):
    if isinstance(inputs, dict):
        rng = np.random.default_rng(0)
        names, args = [], []
        for name, spec in inputs.items():
            names.append(name)
            if hasattr(spec, "shape"):
                args.append(torch.as_tensor(np.asarray(spec)))
            else:
                args.append(torch.from_numpy(rng.standard_normal(tuple(spec)).astype(np.float32)))
        return tuple(args), names
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    args = tuple(torch.as_tensor(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in inputs)
    return args, None


def _tag(node: ir.Node) -> None:
    props = node.metadata_props
    scopes = _literal(props.get("pkg.torch.onnx.name_scopes"))
    classes = _literal(props.get("pkg.torch.onnx.class_hierarchy"))
    if not scopes or not classes:
        return
    if len(scopes) > 2:  # ['', 'features', 'features.0', 'conv2d']: a module's op
        props[provenance.SOURCE] = scopes[-2]
        props[provenance.SOURCE_OP] = classes[-2].rsplit(".", 1)[-1]
    else:  # ['', 'view']: a functional call in the top-level forward
        props[provenance.SOURCE] = scopes[-1]
        props[provenance.SOURCE_OP] = classes[-1].removesuffix(".default")


def _literal(text):
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


@contextlib.contextmanager
def _quiet():
    """torch.onnx.export prints progress and warnings about torchvision; keep stderr clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
