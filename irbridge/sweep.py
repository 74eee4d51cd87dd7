"""`irbridge sweep`: many models x targets, each cell in a fresh child process -> one scoreboard.

Every model x target pair runs `irbridge convert SRC --to T --json` in a process of its own
(with a timeout and a memory cap: its resident size is watched, its address space limited),
so a crash, a hang or running out of memory is one "failed" cell and never the end of the
sweep. The cells are read from the child's JSON and exit code exactly as a user converting
the model alone would read them:

    exit 0 -> verified (max_abs)          exit 1 -> mismatch (first divergent layer, hint)
    exit 2, kind "unsupported" -> unsupported (the op types)   anything else -> failed (why)

The result is the JSON object of DESIGN.md §5; `merge` joins the results of shards.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STATUSES = ("verified", "mismatch", "unsupported", "failed")
MODEL_SUFFIXES = (".onnx", ".keras", ".h5", ".hdf5")
OUTPUT_NAMES = {"torch": "out_torch", "keras": "out.keras", "tf": "out_savedmodel",
                "onnx": "out.onnx", "tflite": "out.tflite"}


@dataclasses.dataclass(frozen=True)
class Model:
    name: str  # as the scoreboard shows it: the path below the folder given, or the file's name
    path: str
    weights: str | None = None  # a Caffe prototxt's .caffemodel


# --- finding models ----------------------------------------------------------------------------
def discover(paths) -> list[Model]:
    """The models under `paths` (files or folders), sorted by name: .onnx, .keras, .h5 files,
    SavedModel folders and Caffe prototxt + caffemodel pairs (same stem)."""
    found: dict[str, Model] = {}
    seen: set[Path] = set()
    for arg in paths:
        root = Path(arg)
        if not root.exists():
            from .errors import InputError

            raise InputError(f"{arg}: no such file or folder")
        for path in _walk(root) if root.is_dir() and not _is_saved_model(root) else [root]:
            model = _as_model(path, root)
            if model is not None and path.resolve() not in seen:  # a file given twice is one model
                seen.add(path.resolve())
                key = model.name if model.name not in found or found[model.name].path == model.path else model.path
                found[key] = dataclasses.replace(model, name=key)
    return sorted(found.values(), key=lambda m: m.name)


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for d in list(dirnames):
            if _is_saved_model(here / d):
                dirnames.remove(d)  # a SavedModel is one model: its variables/ are not searched
                yield here / d
        yield from (here / f for f in filenames)


def _is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _as_model(path: Path, root: Path) -> Model | None:
    name = path.name if path == root else path.relative_to(root).as_posix()
    if path.name.lower().endswith(".weights.h5"):  # Keras 3 weights alone: not a model
        return None
    if _is_saved_model(path) or path.suffix.lower() in MODEL_SUFFIXES:
        return Model(name, str(path))
    if path.suffix.lower() == ".prototxt":
        weights = path.with_suffix(".caffemodel")
        if weights.is_file():
            return Model(name, str(path), str(weights))
    return None


def shard(models: list[Model], spec: str | None) -> list[Model]:
    """`i/n` (1 <= i <= n): every n-th model of the sorted list, starting with the i-th."""
    if not spec:
        return models
    m = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard {spec!r}: expected i/n with 1 <= i <= n (e.g. 2/4)")
    i, n = int(m.group(1)), int(m.group(2))
    return models[i - 1::n]


# --- one cell ----------------------------------------------------------------------------------
def default_memory(jobs: int) -> int:
    """Bytes of memory per child: 90% of the machine's RAM shared among the jobs (at least 1 GiB)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(int(ram * 0.9 / max(jobs, 1)), 1 << 30)


def address_space(memory: int) -> int:
    """The child's RLIMIT_AS for a memory cap: address space runs far ahead of the memory used
    (TensorFlow's arenas, mapped weight files: converting VGG-19 to Keras maps 14 GB to use
    3 GB), so the resident size is watched against `memory` itself and the address space is
    only a backstop against an allocation faster than the watch."""
    return 4 * memory + (8 << 30)


def child_command(model: Model, target: str, out_dir: str, memory: int | None, extra=()) -> list[str]:
    """The child: `python -m irbridge.sweep --child AS convert SRC [WEIGHTS] --to T -o OUT --json`."""
    cmd = [sys.executable, "-m", "irbridge.sweep", "--child", str(address_space(memory) if memory else 0),
           "convert", model.path]
    if model.weights:
        cmd.append(model.weights)
    return cmd + ["--to", target, "-o", os.path.join(out_dir, OUTPUT_NAMES.get(target, "out")), "--json", *extra]


class Children:
    """The running children, so that an interrupted sweep (Ctrl-C, SIGTERM) kills them all and
    starts no more."""

    def __init__(self):
        self.procs: set[subprocess.Popen] = set()
        self.stopped = False
        self._lock = threading.Lock()

    def start(self, cmd, **kw) -> subprocess.Popen:
        with self._lock:
            if self.stopped:
                raise KeyboardInterrupt
            proc = subprocess.Popen(cmd, **kw)
            self.procs.add(proc)
            return proc

    def done(self, proc) -> None:
        with self._lock:
            self.procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            self.stopped = True
            for proc in self.procs:
                _kill_group(proc)


def run_cell(model: Model, target: str, *, timeout: float | None, memory: int | None, tmp_root: str,
             extra=(), children: Children | None = None) -> dict:
    """Convert `model` to `target` in a fresh process; the scoreboard cell, whatever happens."""
    children = children or Children()
    out_dir = tempfile.mkdtemp(prefix="cell-", dir=tmp_root)
    env = {**os.environ, "IRBRIDGE_PROGRESS": "0", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = children.start(child_command(model, target, out_dir, memory, extra), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
                          start_new_session=True)  # its own group: a timeout kills its helpers too
    killed = None
    try:
        while killed is None:
            try:  # a retried communicate() loses no output
                stdout, stderr = proc.communicate(timeout=WATCH_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if timeout and time.perf_counter() - t0 > timeout:
                    killed = f"timed out after {timeout:g} s"
                elif memory and (rss := _resident(proc.pid)) > memory:
                    killed = f"out of memory (limit {memory / 2**20:,.0f} MB): {rss / 2**20:,.0f} MB resident"
                if killed:
                    _kill_group(proc)
                    stdout, stderr = proc.communicate()
    finally:
        children.done(proc)
        shutil.rmtree(out_dir, ignore_errors=True)
    seconds = round(time.perf_counter() - t0, 2)
    cell = {"model": model.name, "target": target, "status": "failed", "max_abs": None,
            "first_divergence": None, "unsupported_ops": [], "error": killed, "seconds": seconds}
    if killed:
        return cell
    return {**cell, **interpret(proc.returncode, stdout, stderr, memory)}


WATCH_SECONDS = 0.2  # how often a child's time and resident memory are looked at


def _resident(pid: int) -> int:
    """The process's resident memory in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def interpret(code: int, stdout: str, stderr: str, memory: int | None = None) -> dict:
    """The cell fields a child's exit code and output give (see the module docstring)."""
    doc = _json_object(stdout)
    check = (doc or {}).get("check") or {}
    if code == 0 and doc and doc.get("ok"):
        return {"status": "verified", "max_abs": check.get("max_abs")}
    if code == 1 and doc and check:
        return {"status": "mismatch", "max_abs": check.get("max_abs"),
                "first_divergence": check.get("first_divergence"),
                "error": "verification failed" + _where(check.get("first_divergence"))}
    err = (doc or {}).get("error") if isinstance((doc or {}).get("error"), dict) else None
    if err is not None:
        message = str(err.get("message") or "")
        if err.get("kind") == "unsupported":
            return {"status": "unsupported", "unsupported_ops": unsupported_ops(message),
                    "error": _first_line(message)}
        if _out_of_memory(message):
            return {"error": _oom_reason(message, memory)}
        return {"error": f"{err.get('kind')}: {_first_line(message)}"}
    return {"error": _crash_reason(code, stderr, memory)}


def _where(div) -> str:
    if not div:
        return ""
    hint = f" ({div['hint']})" if div.get("hint") else ""
    return f" from layer {div.get('layer')}{hint}"


def _json_object(text: str) -> dict | None:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


def _first_line(text: str) -> str:
    """The message's first line; one that ends in ':' takes the next line with it."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[0] if lines else ""
    if line.endswith(":") and len(lines) > 1:
        line += " " + lines[1].removeprefix("- ")
    return line[:300]


_OOM = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory", "failed to map segment",
        "Unable to allocate", "OOM")


def _out_of_memory(text: str) -> bool:
    return any(s in text for s in _OOM)


def _oom_reason(text: str, memory: int | None) -> str:
    limit = f" (limit {memory / 2**20:,.0f} MB)" if memory else ""
    line = next((ln.strip() for ln in reversed(text.splitlines()) if _out_of_memory(ln)), "")
    return f"out of memory{limit}: {line}"[:300]


def _crash_reason(code: int, stderr: str, memory: int | None) -> str:
    last = _first_line("\n".join(reversed(stderr.strip().splitlines()[-20:])))
    if _out_of_memory(stderr):
        return _oom_reason(stderr, memory)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (f": {last}" if last else "")
    return f"exit {code}" + (f": {last}" if last else ": no output")


_NODE_LINE = re.compile(r"^\s*- [^:]+?(?: \(layer [^)]*\))?: ([A-Za-z_][\w.]*): (.*)$", re.MULTILINE)
_LAYER_TYPES = re.compile(r"\b[\w/.:-]+ \(([A-Za-z_]\w*)\)")
_KNOCK_ON = "comes from an unconverted node"  # a node that fails only because one before it did


def unsupported_ops(message: str) -> list[str]:
    """The op types an UnsupportedError's message names, in order, once each: the exporters'
    "  - node (layer L): OpType: why" lines (leaving out nodes that fail only because their
    input's node did), or an importer's "name (Type), ..." list."""
    lines = _NODE_LINE.findall(message)
    ops = [op for op, why in lines if _KNOCK_ON not in why] or [op for op, _ in lines]
    if not ops and "does not convert" in message:
        ops = _LAYER_TYPES.findall(message.split("does not convert", 1)[1])
    return list(dict.fromkeys(ops))


# --- the sweep ---------------------------------------------------------------------------------
def sweep(models: list[Model], targets: list[str], *, jobs: int | None = None, timeout: float | None = None,
          memory: int | None = None, progress=None, extra=()) -> dict:
    """Every model to every target, `jobs` children at a time -> the sweep JSON."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    memory = default_memory(jobs) if memory is None else memory
    remaining = {m.name: len(targets) for m in models}
    lock, children = threading.Lock(), Children()
    cells = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="irbridge-sweep-") as tmp_root, \
            concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        def one(model, target):
            if progress:
                progress.started(model.name)
            cell = run_cell(model, target, timeout=timeout, memory=memory, tmp_root=tmp_root, extra=extra,
                            children=children)
            with lock:
                cells.append(cell)
                remaining[model.name] -= 1
                done = remaining[model.name] == 0
            if progress and done:
                progress.finished(model.name)
            return cell

        futures = [pool.submit(one, m, t) for m in models for t in targets]
        try:
            for f in futures:
                f.result()
        except BaseException:  # Ctrl-C / SIGTERM: no more children, and none left running
            children.kill_all()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return result(cells, targets, seconds=time.perf_counter() - t0)


def result(cells: list[dict], targets: list[str], seconds: float | None = None) -> dict:
    """The sweep JSON from its cells: sorted cells, totals per target, ops that block models."""
    order = {t: i for i, t in enumerate(targets)}
    cells = sorted(cells, key=lambda c: (c["model"], order.get(c["target"], len(order)), c["target"]))
    totals = {t: dict.fromkeys(STATUSES, 0) for t in targets}
    blocking: dict[str, set[str]] = {}
    for c in cells:
        totals.setdefault(c["target"], dict.fromkeys(STATUSES, 0))[c["status"]] += 1
        for op in c.get("unsupported_ops") or ():
            blocking.setdefault(op, set()).add(c["model"])
    blocking_ops = {op: sorted(ms) for op, ms in sorted(blocking.items(), key=lambda kv: (-len(kv[1]), kv[0]))}
    out = {"ok": True, "targets": list(targets), "models": len({c["model"] for c in cells}),
           "cells": cells, "totals": totals, "blocking_ops": blocking_ops}
    if seconds is not None:
        out["seconds"] = round(seconds, 2)
    return out


def merge(docs: list[dict]) -> dict:
    """One sweep JSON from several (e.g. shards run on different machines); a cell given twice
    (same model and target) keeps its last occurrence."""
    targets, cells = [], {}
    for doc in docs:
        if not isinstance(doc, dict) or "cells" not in doc:
            raise ValueError("not a sweep result (no 'cells')")
        targets += [t for t in doc.get("targets", []) if t not in targets]
        for c in doc["cells"]:
            cells[(c["model"], c["target"])] = c
    seconds = sum(d.get("seconds") or 0 for d in docs)
    return result(list(cells.values()), targets, seconds=seconds)


# --- the child ---------------------------------------------------------------------------------
def _child(argv: list[str]) -> int:
    """`python -m irbridge.sweep --child AS ARGS...`: cap the address space at AS bytes (0: no
    cap), then run `irbridge ARGS...` in this process."""
    memory = int(argv[1])
    if memory > 0:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    from .cli import main

    return main(argv[2:])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[1:]))
    sys.exit("usage: python -m irbridge.sweep --child MEMORY_BYTES irbridge-args... (see `irbridge sweep`)")
