"""Binding bare weights onto an architecture (seed 000's vgg16.npy onto a Keras VGG, seed 001's
Caffe blobs onto a Keras conv, seed 002's Theano .h5 weights onto a channels-last model).

    res = irbridge.bind("vgg16.npy", keras_vgg)      # -> BindResult
    res.model                                          # a copy of the architecture, weights set
    res.assigned                                       # [Assignment(tensor, target, transform)]

Steps: read the weights into layers of tensors (sources), list the architecture's weight slots
(targets), pair layers by explicit mapping, then by normalized name, then by order and shape
(matching below), decide the source's layout convention (layouts: from the file format, from
the tensors whose shapes only fit one layout, or from a reference output), and move each
tensor into its slot. A tensor whose shape fits both a layout and its transpose is never
guessed: the convention must come from other evidence, `source_layout`, or `reference`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .layouts import CONVENTIONS, Convention, Slot, convention, to_canonical, unambiguous_votes
from .sources import SourceLayer, SourceTensor, read_weights

PRIORITY = ["tf", "torch", "theano", "keras-channels-first"]  # when shapes agree with several
SLOT_ORDER = {"weight": 0, "bias": 1, "gamma": 0, "beta": 1, "mean": 2, "var": 3, "slope": 0}


@dataclasses.dataclass
class Assignment:
    tensor: str
    target: str
    transform: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class BindResult:
    model: Any  # a copy of the architecture with the weights set (keras.Model, nn.Module, onnx_ir.Model)
    assigned: list[Assignment]
    unassigned: list[str]  # source tensors no slot took
    unfilled: list[str]  # architecture weights left as they were
    convention: str  # the source layout convention used
    report: Any = None  # VerificationReport against `reference`, when given

    @property
    def ok(self) -> bool:
        return self.report is None or self.report.ok

    def to_dict(self) -> dict:
        return {"ok": self.ok, "convention": self.convention, "assigned": [a.to_dict() for a in self.assigned],
                "unassigned": self.unassigned, "unfilled": self.unfilled,
                "check": self.report.to_dict() if self.report is not None else None}


def bind(weights, onto, *, mapping=None, source_layout: str = "auto", reference=None, inputs=None,
         trust_pickle: bool = False) -> BindResult:
    """Put bare `weights` (dict, .npy, .npz, .safetensors, state_dict file, Keras .h5, .caffemodel)
    onto the architecture `onto` (keras.Model, torch.nn.Module, or anything irbridge.load takes).

    mapping: {source name: target name} (layers or tensors), or a JSON file of it.
    source_layout: "auto" or one of tf, torch (= caffe, onnx), theano, keras-channels-first.
    reference: expected outputs for given inputs (.npz path or dict): arrays named after the
        model's inputs, and the expected output(s) under keys starting with "output".
    inputs: what irbridge.load takes: example arrays (a tuple/list, or {name: array}) or
        {name: shape}, where the architecture needs them (a torch module: to see its flattens;
        a subclassed Keras model never built or called: to build it). A built Keras model
        needs none.
    """
    layers, hint = read_weights(weights, trust_pickle)
    target = _target(onto, inputs)
    slots_by_layer = target.layers()
    pairs, unassigned, unfilled = match(layers, slots_by_layer, _mapping(mapping))
    if not pairs:
        raise InputError("no weight could be matched to the architecture: names differ and the layers' shapes "
                         "do not line up in order; give a --map file (source name -> target name).")
    if isinstance(reference, (str, os.PathLike)):
        reference = _read_reference(Path(reference))
    if source_layout != "auto":
        try:
            options = [convention(source_layout)]
        except KeyError:
            raise InputError(f"source layout {source_layout!r}: expected auto or one of "
                             f"{', '.join(CONVENTIONS)} (caffe and onnx mean torch)") from None
    else:
        options = _conventions(pairs, hint, target, reference is not None)
    results = []
    for conv in options:
        assigned, bound = _assign(pairs, conv, target)
        model = target.apply(bound)
        report = _check(model, reference) if reference is not None else None
        result = BindResult(model, assigned, unassigned, unfilled, conv.name, report)
        if report is None or report.ok:
            return result
        results.append(result)
    # no convention reproduces the reference: the closest, with its report (result.ok is False)
    return min(results, key=lambda r: r.report.max_abs)


# --- matching ----------------------------------------------------------------------------------
def normalize_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def match(layers: list[SourceLayer], targets: list[tuple[str, list[Slot]]], mapping: dict):
    """[(source tensor, slot)], source tensors left over, slots left over. Tensors named in the
    mapping pair first; then layers by the mapping, by normalized name, and in order where the
    weight shapes fit."""
    pairs, layers, targets = _pair_mapped_tensors(layers, targets, mapping)
    taken_src, taken_tgt = set(), set()
    by_name = {normalize_name(t): t for t, _ in targets}
    slots = dict(targets)

    def pair(src: SourceLayer, tgt: str):
        pairs.extend(_pair_tensors(src, slots[tgt]))
        taken_src.add(src.name)
        taken_tgt.add(tgt)

    for src in layers:  # explicit mapping, then names
        tgt = mapping.get(src.name)
        if tgt is None:
            tgt = by_name.get(normalize_name(src.name))
        elif tgt not in slots:
            raise InputError(f"mapping: {src.name!r} -> {tgt!r}, but the architecture has no layer {tgt!r} "
                             f"with weights (it has: {', '.join(list(slots)[:12])}...)")
        if tgt is not None and tgt not in taken_tgt:
            pair(src, tgt)
    rest = [s for s in layers if s.name not in taken_src]
    i = 0
    for tgt, tslots in targets:  # then in order, where shapes fit
        if tgt in taken_tgt:
            continue
        for j in range(i, len(rest)):
            if _fits(rest[j], tslots):
                pair(rest[j], tgt)
                i = j + 1
                break
    used = {t.name for t, _ in pairs}
    unassigned = [t.name for s in layers for t in s.tensors if t.name not in used]
    filled = {s.target for _, s in pairs}
    unfilled = [s.target for _, ts in targets for s in ts if s.target not in filled]
    return pairs, unassigned, unfilled


def _pair_mapped_tensors(layers, targets, mapping):
    """Tensor-level mapping entries (e.g. Caffe's BatchNorm and Scale blobs onto one Keras
    BatchNormalization): their pairs, and the layers and targets without them."""
    layer_names = {ly.name for ly in layers}
    by_target = {s.target: s for _, ts in targets for s in ts}
    pairs = []
    for t in (t for ly in layers for t in ly.tensors if t.name in mapping and t.name not in layer_names):
        slot = by_target.get(mapping[t.name])
        if slot is None:
            raise InputError(f"mapping: {t.name!r} -> {mapping[t.name]!r}, but the architecture has no weight "
                             f"{mapping[t.name]!r} (it has e.g. {', '.join(list(by_target)[:6])})")
        pairs.append((t, slot))
    if not pairs:
        return pairs, layers, targets
    mapped, mapped_slots = {t.name for t, _ in pairs}, {s.target for _, s in pairs}
    layers = [SourceLayer(ly.name, [t for t in ly.tensors if t.name not in mapped]) for ly in layers]
    targets = [(n, [s for s in ts if s.target not in mapped_slots]) for n, ts in targets]
    return pairs, [ly for ly in layers if ly.tensors], [(n, ts) for n, ts in targets if ts]


def _pair_tensors(src: SourceLayer, slots: list[Slot]) -> list[tuple[SourceTensor, Slot]]:
    roles = {s.role for s in slots}
    if "gamma" in roles:  # BatchNorm: torch's weight/bias are gamma/beta
        rename = {"weight": "gamma", "bias": "beta"}
        tensors = [dataclasses.replace(t, role=rename.get(t.role, t.role)) for t in src.tensors]
    else:
        tensors = src.tensors
    if all(t.role in roles for t in tensors):
        by_role = {s.role: s for s in slots}
        return [(t, by_role[t.role]) for t in tensors]
    ordered = sorted(slots, key=lambda s: SLOT_ORDER.get(s.role, 9))
    return list(zip(tensors, ordered))


def _fits(src: SourceLayer, slots: list[Slot]) -> bool:
    pairs = _pair_tensors(src, slots)
    if len(pairs) < min(len(slots), len(src.tensors)) or not pairs:
        return False
    from .layouts import candidates

    return all(candidates(slot, t.array) for t, slot in pairs)


def _mapping(mapping) -> dict:
    if mapping is None:
        return {}
    if isinstance(mapping, dict):
        return {str(k): str(v) for k, v in mapping.items()}
    path = Path(os.fspath(mapping))
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix != ".yaml" and path.suffix != ".yml" else _yaml(text, path)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable mapping file ({e}); expected JSON {{source: target}}.") from e
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{source name: target name}}.")
    return {str(k): str(v) for k, v in data.items()}


def _yaml(text: str, path: Path):
    try:
        import yaml
    except ImportError:
        raise InputError(f"{path}: YAML mappings need PyYAML (pip install pyyaml); or write it as JSON.") from None
    return yaml.safe_load(text)


# --- conventions -------------------------------------------------------------------------------
def _conventions(pairs, hint: str | None, target, have_reference: bool) -> list[Convention]:
    """The conventions to try, best first. Shapes that fit only one layout vote; a tensor that fits
    both is refused unless the votes, the file format or a reference settle its kind."""
    votes = {"conv": set(), "dense": set()}
    ambiguous = []
    for t, slot in pairs:
        kind = "conv" if slot.kind in ("conv", "depthwise") else slot.kind
        if kind not in votes:
            continue
        fits = unambiguous_votes(slot, t.array)
        if len(fits) == 1:
            votes[kind] |= fits
        elif len(fits) > 1:
            ambiguous.append((t, slot, kind))
    ok = [CONVENTIONS[n] for n in PRIORITY
          if (not votes["conv"] or CONVENTIONS[n].kernel in votes["conv"])
          and (not votes["dense"] or CONVENTIONS[n].dense in votes["dense"])]
    if hint is not None and convention(hint) in ok:
        ok.remove(convention(hint))
        ok.insert(0, convention(hint))
    if not ok:
        raise InputError("the weights mix layouts: conv kernels look " + "/".join(sorted(votes["conv"]))
                         + ", Dense weights " + "/".join(sorted(votes["dense"]))
                         + "; give --source-layout (tf, torch, theano, keras-channels-first).")
    unsettled = [(t, s) for t, s, kind in ambiguous if not votes[kind] and hint is None]
    flatten_unknown = getattr(target, "flatten_known", True) is False  # a torch module given no inputs
    if flatten_unknown and ok[0].flatten == "HWC" and any(s.kind == "dense" for _, s in pairs) \
            and any(s.kind == "conv" for _, s in pairs):
        raise InputError("the weights come from a channels-last source and the module has Linear layers: give "
                         "inputs={name: shape} (--input) so irbridge sees which Linear follows a flatten.")
    if unsettled and not have_reference:
        t, s = unsettled[0]
        raise InputError(f"{t.name} {tuple(t.array.shape)} fits {s.target} both as it is and transposed, and nothing "
                         "else in the file tells which; give --source-layout (tf, torch, theano, "
                         "keras-channels-first) or --reference OUT.npz (inputs and the expected output).")
    return ok if have_reference else ok[:1]


# --- assigning ---------------------------------------------------------------------------------
def _assign(pairs, conv: Convention, target) -> tuple[list[Assignment], dict[str, np.ndarray]]:
    assigned, bound, misfits = [], {}, []
    for t, slot in pairs:
        fit = to_canonical(slot, t.array, conv)
        if fit is None:
            misfits.append(f"{t.name} {tuple(t.array.shape)} -> {slot.target} (canonical {tuple(slot.shape)})")
            continue
        bound[slot.target] = target.store(slot, fit.array)
        assigned.append(Assignment(t.name, slot.target, _describe(slot, fit, conv, target)))
    if misfits:
        raise InputError(f"{len(misfits)} tensor(s) do not fit their slot under the {conv.name} layout: "
                         + "; ".join(misfits) + ". Fix the pairing with --map, or the layout with --source-layout.")
    return assigned, bound


def _describe(slot: Slot, fit, conv: Convention, target) -> str:
    """The net transform from the source tensor to the target's stored tensor."""
    parts = []
    src = {"conv": conv.kernel, "depthwise": conv.kernel, "dense": conv.dense}.get(slot.kind)
    dst = target.stored_layout(slot)
    if src and dst and src != dst:
        if slot.kind == "depthwise":
            parts.append(f"{'HWCM' if src == 'HWIO' else 'OIHW'} -> {dst}")
        else:
            perm = tuple(src.index(ch) for ch in dst)
            parts.append(f"{src} -> {dst}: transpose{perm}")
    parts += [s for s in fit.steps if not s.startswith(("transpose", "transposed"))]
    return "; ".join(parts) or "as is"


# --- targets, references -----------------------------------------------------------------------
def _target(onto, inputs):
    from .. import formats
    from .targets import KerasTarget, OnnxTarget, TorchTarget

    if _is_keras_model(onto):  # functional, Sequential or subclassed (a user's class lives elsewhere)
        return KerasTarget(onto, inputs)
    if formats._is_torch_module(onto):
        return TorchTarget(onto, inputs)
    if isinstance(onto, (str, os.PathLike)) and Path(onto).suffix == ".keras":
        import keras

        try:
            return KerasTarget(keras.saving.load_model(onto, safe_mode=True))
        except Exception as e:  # noqa: BLE001 - Keras raises many kinds for unsafe or broken files
            raise InputError(f"{onto}: Keras cannot load it safely: {str(e).splitlines()[0]}") from e
    from ..api import load, normalize

    return OnnxTarget(normalize(load(onto, inputs=inputs)))


def _is_keras_model(obj) -> bool:
    if type(obj).__module__.split(".")[0] == "keras":
        return True
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def _read_reference(path: Path) -> dict:
    from .npy import load_npz

    if not path.is_file():
        raise InputError(f"{path}: no such file (the reference: an .npz of inputs and 'output' arrays).")
    return load_npz(path)


def _check(model, reference: dict):
    from ..verify import DEFAULT_RTOL, VerificationReport, compare

    inputs = {k: v for k, v in reference.items() if not k.startswith("output")}
    expected = [reference[k] for k in sorted(k for k in reference if k.startswith("output"))]
    if not expected or not inputs:
        raise InputError("the reference needs the inputs (named after the model's inputs) and the expected "
                         "output(s) under keys starting with 'output'.")
    got = _run(model, inputs)
    checks = [compare(f"output{i}", e, g) for i, (e, g) in enumerate(zip(expected, got))]
    return VerificationReport(all(c.ok for c in checks), None, DEFAULT_RTOL, checks)


def _run(model, inputs: dict) -> list[np.ndarray]:
    import onnx_ir as ir

    arrays = list(inputs.values())
    if isinstance(model, ir.Model):
        from ..verify import onnx_runner

        return list(onnx_runner(model).run(inputs).values())
    if type(model).__module__.split(".")[0] == "keras":
        out = model(arrays if len(arrays) > 1 else arrays[0], training=False)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    import torch

    with torch.no_grad():
        out = model(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])
    return [o.numpy() for o in (out if isinstance(out, (list, tuple)) else [out])]
