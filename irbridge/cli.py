"""The `irbridge` command (DESIGN.md §5).

Exit codes: 0 done (and verified unless --no-check); 1 verification failed (nothing written);
2 bad input, unsupported construct or usage error. `--json` prints exactly one JSON object on
stdout; logs go to stderr. Heavy modules are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

TARGETS = ("onnx", "torch", "keras", "tf", "tflite")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 on usage errors too, but we want our JSON
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="irbridge", description="Convert trained networks between frameworks "
                "through ONNX, and verify the result against onnxruntime.")
    p.add_argument("--version", action="version", version="irbridge 0.1.0")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("convert", help="convert a model to another framework (verified)")
    c.add_argument("src")
    c.add_argument("weights", nargs="?")
    c.add_argument("--to", required=True, choices=TARGETS)
    c.add_argument("-o", "--output", required=True)
    c.add_argument("--from", dest="fmt", help="source format when the suffix does not tell")
    c.add_argument("--passes", help="comma-separated pass names (default: the default pipeline)")
    c.add_argument("--input", action="append", default=[], metavar="NAME:D1,D2,...",
                   help="fix an input's shape (its free dims become these sizes; repeatable)")
    c.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS[=label]",
                   help="PyTorch sources: keep this axis free too (the batch is free by default; repeatable)")
    c.add_argument("--no-check", action="store_true", help="skip verification against onnxruntime")
    c.add_argument("--atol", type=float)
    c.add_argument("--rtol", type=float)
    c.add_argument("--dump-ir", metavar="DIR", help="write the graph after each step for Netron")
    c.add_argument("--keep-nchw-io", action="store_true",
                   help="--to keras/tf/tflite: keep NCHW inputs/outputs (default: NHWC interfaces)")
    c.add_argument("--quantize", choices=("float16", "dynamic-int8", "int8"),
                   help="--to tflite: quantize (measured against onnxruntime: JSON 'accuracy')")
    c.add_argument("--calibration", metavar="FILE.npz|DIR",
                   help="--to tflite --quantize int8: samples (arrays by input name, samples on axis 0) "
                        "or a folder of images (resized to the input, scaled to 0..1)")
    c.add_argument("--int8-io", action="store_true", help="--quantize int8: int8 inputs and outputs too")
    c.add_argument("--allow-flex", action="store_true",
                   help="--to tflite: allow TensorFlow (Flex) ops where LiteRT has no builtin")
    c.add_argument("--max-error", type=float, metavar="X",
                   help="--quantize: fail (exit 1) when any output's max abs error exceeds X")
    c.add_argument("--preprocess", choices=("caffe-bgr-mean",),
                   help="--to tf: take RGB 0..255 images; apply RGB->BGR and ImageNet mean subtraction")
    c.add_argument("--random-weights", action="store_true",
                   help="convert a prototxt alone with seeded random weights (to look at the structure)")
    c.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw",
                   help="--to onnx: channels-last image inputs/outputs, fewest Transposes (default nchw)")
    _common(c)

    i = sub.add_parser("inspect", help="show a model's inputs, outputs, ops and size")
    i.add_argument("model")
    i.add_argument("weights", nargs="?")
    i.add_argument("--from", dest="fmt")
    _common(i)

    v = sub.add_parser("verify", help="compare two models on the same seeded inputs")
    v.add_argument("a")
    v.add_argument("b")
    v.add_argument("--inputs", metavar="X.npz", help="inputs keyed by input name")
    v.add_argument("--layerwise", action="store_true", help="compare every layer; report the first divergence")
    v.add_argument("--report", metavar="REPORT.html",
                   help="also write the report as one HTML page (per-layer error plot with --layerwise)")
    v.add_argument("--atol", type=float)
    v.add_argument("--rtol", type=float)
    v.add_argument("--max-error", type=float, metavar="X",
                   help="B a quantized .tflite: fail (exit 1) when any output's max abs error exceeds X")
    _common(v)

    b = sub.add_parser("bind", help="put bare weights (npy, npz, safetensors, state_dict, Keras h5, caffemodel) "
                                    "onto an architecture")
    b.add_argument("weights")
    b.add_argument("--onto", required=True, metavar="ARCH", help="the architecture: any model irbridge loads")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--map", metavar="FILE", help="JSON {source name: target name} (layers or tensors)")
    b.add_argument("--source-layout", default="auto",
                   choices=("auto", "tf", "torch", "caffe", "onnx", "theano", "keras-channels-first"),
                   help="how the weights are stored (default: inferred, refused when ambiguous)")
    b.add_argument("--reference", metavar="OUT.npz",
                   help="inputs (by input name) and expected 'output' arrays: settles ambiguous layouts")
    b.add_argument("--to", choices=TARGETS, help="export the bound model (default: the architecture's format)")
    b.add_argument("--input", action="append", default=[], metavar="NAME:D1,D2,...")
    b.add_argument("--trust-pickle", action="store_true",
                   help="let a .npy's pickle build any object (runs code from the file: trusted files only)")
    _common(b)

    ps = sub.add_parser("passes", help="list the graph passes")
    _common(ps)

    o = sub.add_parser("ops", help="the op coverage table, generated from the registries")
    g = o.add_mutually_exclusive_group()
    g.add_argument("--target", choices=TARGETS)
    g.add_argument("--source")
    o.add_argument("--markdown", action="store_true")
    _common(o)

    w = sub.add_parser("view", help="open a model in Netron (served on 127.0.0.1)")
    w.add_argument("model")
    w.add_argument("weights", nargs="?")
    w.add_argument("--port", type=int, default=8080)
    w.add_argument("--no-browser", action="store_true")
    _common(w)

    sw = sub.add_parser("sweep", help="convert every model under the paths to every target, each in a "
                                      "fresh process; one scoreboard")
    sw.add_argument("paths", nargs="*", metavar="PATH",
                    help="model files or folders (.onnx, .keras, .h5, SavedModel, prototxt + caffemodel)")
    sw.add_argument("--to", default="torch,keras,tf", help="comma-separated targets (default torch,keras,tf)")
    sw.add_argument("--jobs", type=int, help="children at a time (default: the machine's cores)")
    sw.add_argument("--timeout", type=float, default=900.0, help="seconds per conversion (default 900)")
    sw.add_argument("--memory-mb", type=int,
                    help="memory cap per child, resident (default: 90%% of RAM / jobs, at least 1 GiB)")
    sw.add_argument("--report", metavar="R.html", help="also write a self-contained, sortable HTML report")
    sw.add_argument("--markdown", metavar="R.md", help="also write the scoreboard as a markdown table")
    sw.add_argument("--shard", metavar="i/n", help="only every n-th model of the sorted list, from the i-th")
    sw.add_argument("--merge", nargs="+", metavar="A.json", help="combine sweep JSON outputs (no conversions)")
    sw.add_argument("--atol", type=float)
    sw.add_argument("--rtol", type=float)
    _common(sw)
    return p


def _common(p):
    if p.prog.split()[-1] in ("convert", "inspect", "view"):
        p.add_argument("--trust-code", action="store_true",
                       help="let a Keras file's Lambda layers and custom objects load (off: files may be hostile)")
        p.add_argument("--trust-pickle", action="store_true",
                       help="unpickle a whole-module .pt/.pth file (runs code from it: trusted files only)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks and irbridge's debug log (e.g. why an attention block stays Dense + einsum)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    want_json = "--json" in argv
    debug = "--debug" in argv
    _terminate_cleanly()
    _quiet_libraries(debug)
    try:
        args = build_parser().parse_args(argv)
        with _debug_log(debug):
            return COMMANDS[args.command](args)
    except SystemExit as e:  # --help / --version
        return int(e.code or 0)
    except BrokenPipeError:  # `irbridge ops | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except UsageError as e:
        return _fail("usage", str(e), [], want_json, debug, e)
    except Exception as e:
        from .errors import IrbridgeError

        if isinstance(e, IrbridgeError):
            return _fail(e.kind, e.message, e.nodes, want_json, debug, e, e.exit_code)
        return _fail("internal", f"unexpected {type(e).__name__}: {e} (run with --debug for the "
                     "traceback and report it)", [], want_json, debug, e)


def _quiet_libraries(debug: bool) -> None:
    """onnx_ir logs a traceback when shape inference gives up on a graph (which then stays as it
    was); the command's own message says what matters. --debug shows it all."""
    import logging

    if not debug:
        logging.getLogger("onnx_ir").setLevel(logging.ERROR)


@contextlib.contextmanager
def _debug_log(debug: bool):
    """Under --debug, irbridge's own loggers speak on stderr at DEBUG level for the command's run:
    the reasons behind choices (why a block stayed Dense + einsum, ...) that are not errors."""
    if not debug:
        yield
        return
    import logging

    logger = logging.getLogger("irbridge")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("irbridge: debug: %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _terminate_cleanly() -> None:
    """SIGTERM unwinds like Ctrl-C, so that half-written temporaries are removed (exit 143)."""
    import signal

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (e.g. main() called from a worker): leave it
        pass


def _fail(kind, message, nodes, want_json, debug, exc, code=2) -> int:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if want_json:
        _emit({"ok": False, "error": {"kind": kind, "message": message, "nodes": list(nodes)}})
    else:
        print(f"irbridge: error: {message}", file=sys.stderr)
    return code


def _emit(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _parse_dynamic(specs: list[str]) -> dict | None:
    if not specs:
        return None
    from .importers.dynamic_spec import parse_dynamic

    return parse_dynamic(specs)


def _parse_inputs(specs: list[str]) -> dict[str, tuple[int, ...]] | None:
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, sep, dims = spec.rpartition(":")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = tuple(int(d) for d in dims.split(","))
        except ValueError:
            raise UsageError(f"--input {spec!r}: expected NAME:D1,D2,... (e.g. data:1,3,224,224)") from None
    return out


# ----------------------------------------------------------------------------------------------
def cmd_convert(args) -> int:
    from . import api, dims, passes
    from .errors import VerificationError
    from .provenance import PASSES, SOURCE_FORMAT

    if args.to not in _available_targets():
        raise UsageError(f"--to {args.to}: this version of irbridge exports to "
                         f"{', '.join(_available_targets())}")
    names = [p.strip() for p in args.passes.split(",") if p.strip()] if args.passes else None
    if names:
        for n in names:
            passes.get(n)  # unknown names fail before any work
    t0 = time.perf_counter()
    from .progress import for_cli

    try:
        with for_cli(args.json):
            res = api.convert(args.src, args.to, args.output, weights=args.weights, passes=names,
                              check=not args.no_check, inputs=_parse_inputs(args.input),
                              atol=args.atol, rtol=args.rtol, format=args.fmt, dump_dir=args.dump_ir,
                              layout=args.layout, keep_nchw_io=args.keep_nchw_io,
                              preprocess=args.preprocess, trust_code=args.trust_code,
                              trust_pickle=args.trust_pickle, random_weights=args.random_weights,
                              dynamic=_parse_dynamic(args.dynamic), **_tflite_args(args))
    except VerificationError as e:
        accuracy = getattr(e.report, "accuracy", None)
        if args.json:
            failed = {"ok": False, "source": args.src, "target": args.to, "output": None,
                      "check": _check_dict(e.report)}
            if accuracy is not None:
                failed["accuracy"] = accuracy
            _emit(failed)
        else:
            print(str(e.report))
            if accuracy is not None:
                from .verify.quantized import summary

                print(summary(accuracy))
            _log(f"irbridge: verification failed; nothing written to {args.output}")
        return 1
    model = res.model
    out = {
        "ok": True,
        "source": args.src,
        "source_format": model.metadata_props.get(SOURCE_FORMAT),
        "target": args.to,
        "output": str(res.output),
        "nodes": sum(1 for _ in model.graph),
        "parameters": _parameters(model),
        "passes": [p for p in model.metadata_props.get(PASSES, "").split(",") if p],
        "import_check": model.metadata_props.get("irbridge.import_check"),
        "check": _check_dict(res.report) if res.report is not None else None,
        "dims": dims.summary(model),
        "seconds": {k: round(v, 4) for k, v in res.seconds.items()},
    }
    if res.accuracy is not None:
        out["accuracy"] = res.accuracy
    out["seconds"]["total"] = round(time.perf_counter() - t0, 4)
    if args.layout == "nhwc":
        from .passes.to_nhwc import remaining_transposes

        out["layout"] = "nhwc"
        out["transposes"] = remaining_transposes(model)
    if args.json:
        _emit(out)
    else:
        if res.report is not None:
            print(str(res.report))
            if res.accuracy is not None:
                from .verify.quantized import summary

                print(summary(res.accuracy))
        else:
            print("verification: skipped (--no-check)")
        print(f"wrote {res.output} ({out['nodes']} nodes, {out['parameters']:,} parameters, "
              f"{out['seconds']['total']:.2f} s)")
        for d in out["dims"]["free"]:
            print(f"  free: {d['input']} axis {d['axis']} ({d['label']})")
        for d in out["dims"]["fixed"]:
            print(f"  fixed: {d['input']} axis {d['axis']} = {d['size']} ({d['why']})")
        for t in out.get("transposes", []):
            print(f"  Transpose {t['node']} (layer {t['layer']}, perm {t['perm']}) stays: {t['reason']}")
    return 0


def _tflite_args(args) -> dict:
    """The --to tflite options, passed only when given (other targets refuse them by name)."""
    given = {"quantize": args.quantize, "calibration": args.calibration, "int8_io": args.int8_io,
             "allow_flex": args.allow_flex, "max_error": args.max_error}
    return {k: v for k, v in given.items() if v not in (None, False)}


def _available_targets():
    from .exporters import REGISTRY

    return [t for t in TARGETS if t in REGISTRY]


def _check_dict(report) -> dict:
    d = report.to_dict()
    d.pop("layers", None)
    return d


def _parameters(model) -> int:
    return int(sum(v.const_value.size for v in model.graph.initializers.values() if v.const_value is not None))


def cmd_inspect(args) -> int:
    import collections

    from . import api, dims
    from .provenance import SOURCE_FORMAT, SOURCE_OPSET

    model = api.load(args.model, args.weights, format=args.fmt, trust_code=args.trust_code,
                     trust_pickle=args.trust_pickle)
    init = model.graph.initializers

    def io(values):
        return [{"name": v.name, "shape": _shape(v), "dtype": v.dtype.name.lower() if v.dtype else None}
                for v in values if v.name not in init]

    ops = collections.Counter(n.op_type for n in model.graph)
    out = {
        "format": model.metadata_props.get(SOURCE_FORMAT),
        "opset": int(model.metadata_props.get(SOURCE_OPSET, model.opset_imports.get("", 0))),
        "inputs": io(model.graph.inputs),
        "outputs": io(model.graph.outputs),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": _parameters(model),
        "nodes": sum(ops.values()),
        "dims": dims.summary(model),
    }
    if args.json:
        _emit(out)
    else:
        print(f"{args.model}: {out['format']}, opset {out['opset']}, {out['nodes']} nodes, "
              f"{out['parameters']:,} parameters")
        for kind in ("inputs", "outputs"):
            for v in out[kind]:
                print(f"  {kind[:-1]:6} {v['name']}: {v['dtype']} {v['shape']}")
        print("  ops: " + ", ".join(f"{k} x{n}" for k, n in out["ops"].items()))
        for d in out["dims"]["fixed"]:
            print(f"  fixed: {d['input']} axis {d['axis']} = {d['size']} ({d['why']})")
    return 0


def _shape(v):
    if v.shape is None:
        return None
    return [d if isinstance(d, int) else str(d) for d in v.shape]


def cmd_verify(args) -> int:
    from . import api
    from .errors import InputError

    inputs = None
    if args.inputs:
        from .binding.npy import load_npz

        if not Path(args.inputs).is_file():
            raise InputError(f"{args.inputs}: no such file; give an .npz keyed by input name")
        inputs = load_npz(Path(args.inputs))
    if str(args.b).lower().endswith(".tflite"):  # run in LiteRT; a quantized file gets the accuracy report
        from .exporters.tflite.check_file import verify_file

        rep = verify_file(args.a, args.b, inputs=inputs, layerwise=args.layerwise, atol=args.atol,
                          rtol=args.rtol, max_error=args.max_error)
    elif args.max_error is not None:
        raise InputError("--max-error applies when B is a quantized .tflite file")
    else:
        rep = api.verify(args.a, args.b, inputs=inputs, layerwise=args.layerwise, atol=args.atol, rtol=args.rtol)
    accuracy = getattr(rep, "accuracy", None)
    if args.report:
        from ._io import atomic_path

        with atomic_path(args.report) as tmp:
            tmp.write_text(rep.to_html(title=f"{Path(args.b).name} vs {Path(args.a).name}"), encoding="utf-8")
    if args.json:
        d = rep.to_dict()
        d.pop("max_abs")
        d.pop("max_rel")
        if accuracy is not None:
            d["accuracy"] = accuracy
        _emit(d)
    else:
        print(str(rep))
        if accuracy is not None:
            from .verify.quantized import summary

            print(summary(accuracy))
        for c in rep.layers:
            local = f" local={c.local_max_abs:.3g}" if c.local_max_abs is not None else ""
            print(f"    {c.name}: max_abs={c.max_abs:.3g}{local} {'ok' if c.ok else 'FAIL'}")
    return 0 if rep.ok else 1


def cmd_passes(args) -> int:
    from . import passes

    passes._load_all()
    rows = [{"name": s.name, "description": s.description, "default": s.name in passes.DEFAULT_PIPELINE}
            for s in passes.REGISTRY.values()]
    order = {n: i for i, n in enumerate(passes.DEFAULT_PIPELINE)}
    rows.sort(key=lambda r: (order.get(r["name"], 999), r["name"]))
    if args.json:
        _emit([{"name": r["name"], "description": r["description"]} for r in rows])
    else:
        print("default pipeline: " + " -> ".join(passes.DEFAULT_PIPELINE))
        for r in rows:
            print(f"  {r['name']:20} {r['description']}")
    return 0


def cmd_ops(args) -> int:
    from .coverage import table

    rows, columns = table(target=args.target, source=args.source)
    if args.json:
        _emit(rows)
    elif args.markdown:
        print("| op | " + " | ".join(columns) + " |")
        print("|---|" + "---|" * len(columns))
        for r in rows:
            print(f"| {r['op']} | " + " | ".join(r.get(c, "") for c in columns) + " |")
    else:
        for r in rows:
            print(f"{r['op']:24} " + "  ".join(f"{c}={r.get(c, '-')}" for c in columns))
    return 0


def cmd_view(args) -> int:
    import tempfile

    import netron

    from . import api
    from .exporters.onnx import save_onnx

    path = Path(args.model)
    if not (path.suffix.lower() == ".onnx" and path.is_file() and args.weights is None):
        model = api.load(args.model, args.weights, trust_code=args.trust_code, trust_pickle=args.trust_pickle)
        tmp = Path(tempfile.mkdtemp(prefix="irbridge-view-"))
        path = save_onnx(model, tmp / (Path(args.model).stem + ".onnx"))
    else:
        api.load(path)  # fail with a clear message on a corrupt file, before serving it
    address = netron.serve(str(path), None, address=("127.0.0.1", args.port), browse=not args.no_browser)
    url = f"http://{address[0]}:{address[1]}/"
    if args.json:
        _emit({"ok": True, "url": url, "model": str(path)})
    else:
        print(f"serving {path} at {url} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        netron.wait()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_bind(args) -> int:
    import onnx_ir as ir

    from . import api
    from .binding import bind

    res = bind(args.weights, args.onto, mapping=args.map, source_layout=args.source_layout,
               reference=args.reference, inputs=_parse_inputs(args.input), trust_pickle=args.trust_pickle)
    out = None
    if res.ok:
        model = res.model
        if args.to and not (args.to == "onnx" and isinstance(model, ir.Model)):
            if not isinstance(model, ir.Model):
                raise UsageError("--to applies to architectures loaded as ONNX graphs; a Keras or PyTorch "
                                 "architecture is saved in its own format")
            model = api.export(model, args.to)  # verified against onnxruntime
        out = str(api.save(model, args.output, source=Path(args.weights).name))
    if args.json:
        _emit({**res.to_dict(), "output": out})
    else:
        for a in res.assigned:
            print(f"  {a.tensor} -> {a.target}: {a.transform}")
        for name in res.unassigned:
            print(f"  {name}: not used")
        for name in res.unfilled:
            print(f"  {name}: left as it was (no weight for it)")
        if res.report is not None:
            print(str(res.report))
        _log(f"bound {len(res.assigned)} tensors ({res.convention} layout)"
             + (f"; wrote {out}" if out else "; nothing written"))
    return 0 if res.ok else 1


def cmd_sweep(args) -> int:
    from . import sweep as sw

    targets = [t.strip() for t in args.to.split(",") if t.strip()]
    known = (*TARGETS, "tflite")
    if not targets or any(t not in known for t in targets):
        raise UsageError(f"--to {args.to}: expected targets from {', '.join(known)}, comma-separated")
    if args.merge:
        if args.paths:
            raise UsageError("--merge combines JSON outputs: give no PATH with it")
        docs = []
        for f in args.merge:
            try:
                docs.append(json.loads(Path(f).read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                raise UsageError(f"--merge {f}: not a readable sweep JSON ({e})") from None
        try:
            res = sw.merge(docs)
        except ValueError as e:
            raise UsageError(f"--merge: {e}") from None
    else:
        if not args.paths:
            raise UsageError("sweep: give at least one PATH (or --merge A.json B.json ...)")
        try:
            models = sw.shard(sw.discover(args.paths), args.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None
        extra = [*(["--atol", str(args.atol)] if args.atol is not None else []),
                 *(["--rtol", str(args.rtol)] if args.rtol is not None else [])]
        from .sweep_report import SweepProgress

        memory = args.memory_mb * 2**20 if args.memory_mb else None
        with SweepProgress(len(models), enabled=_progress_enabled(args.json)) as progress:
            res = sw.sweep(models, targets, jobs=args.jobs, timeout=args.timeout, memory=memory,
                           progress=progress, extra=extra)
        if args.shard:
            res["shard"] = args.shard
    from ._io import atomic_path
    from .sweep_report import to_html, to_markdown

    for path, render in ((args.report, to_html), (args.markdown, to_markdown)):
        if path:
            with atomic_path(path) as tmp:
                tmp.write_text(render(res), encoding="utf-8")
    if args.json:
        _emit(res)
    else:
        print(to_markdown(res), end="")
    return 0


def _progress_enabled(json_output: bool) -> bool:
    forced = os.environ.get("IRBRIDGE_PROGRESS")
    if forced is not None:
        return forced not in ("0", "")
    return not json_output and sys.stderr.isatty()


COMMANDS = {
    "convert": cmd_convert,
    "inspect": cmd_inspect,
    "verify": cmd_verify,
    "bind": cmd_bind,
    "passes": cmd_passes,
    "ops": cmd_ops,
    "view": cmd_view,
    "sweep": cmd_sweep,
}


if __name__ == "__main__":
    sys.exit(main())
