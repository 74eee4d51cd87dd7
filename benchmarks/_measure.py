"""Shared by the benchmarks: one measurement = one fresh process, timed inside it.

`measure(setup, body)` runs `setup` (imports: not timed), then `body` under the clock, in a new
Python process (by default this one's interpreter; peers run in their own virtual environments).
Peak memory is the process's VmHWM minus its VmRSS after `setup`. A memory cap is enforced from
outside by polling the process's RSS (an address-space limit would break TensorFlow, which
reserves far more than it touches); a process over the cap is killed and reported as such.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

PROBE = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
def _rss(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024
{setup}
base = _rss("VmRSS")
t = time.perf_counter()
{body}
print("RESULT", time.perf_counter() - t, _rss("VmHWM") - base, flush=True)
"""


def measure(setup: str, body: str, *, python: str | os.PathLike = sys.executable, cwd: Path = ROOT,
            cap_bytes: int | None = None, timeout: float = 1800) -> tuple[float, int] | str:
    """(seconds, peak bytes above baseline), or why it failed (a short sentence)."""
    code = PROBE.format(setup=setup, body=body)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([str(python), "-c", code], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    why = _watch(proc, cap_bytes, timeout)
    out, err = proc.communicate()
    if why:
        return why
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT")), None)
    if proc.returncode or line is None:
        if proc.returncode in (-9, 137):
            return "failed: killed (out of memory)"
        said = [ln for ln in err.strip().splitlines()
                if ln.strip() and not re.match(r"^[IWE]\d{4} |WARNING|\s*warnings.warn|.*Warning:", ln)]
        return f"failed: {(said or [f'exit {proc.returncode}'])[-1].strip()[:200]}"
    _, seconds, peak = line.split()
    return float(seconds), int(peak)


def _watch(proc: subprocess.Popen, cap_bytes: int | None, timeout: float) -> str | None:
    """Poll until the process ends; kill it past the cap or the timeout and say so."""
    start = time.monotonic()
    while proc.poll() is None:
        if cap_bytes is not None and _rss(proc.pid) > cap_bytes:
            proc.kill()
            return f"failed: over the {cap_bytes / 2**30:.0f} GB memory cap (killed)"
        if time.monotonic() - start > timeout:
            proc.kill()
            return f"failed: still running after {timeout / 60:.0f} min (killed)"
        time.sleep(0.1)
    return None


def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(m.group(1)) * 1024 if m else 0


def classic_onnx(path: Path, net: str, batch: int = 1) -> Path:
    """irbridge.models.torch_classics' `net` exported to ONNX by irbridge (opset 18; torch.export
    fixes the batch), written once."""
    if not path.exists():
        from irbridge.models.torch_classics import classic

        import irbridge

        irbridge.convert(classic(net), "onnx", path, inputs={"x": (batch, 3, 224, 224)}, check=False)
    return path


def fmt(x) -> str:
    """A table cell: '1.2 s, 345 MB', a failure's words, or a dash."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x.replace("|", "/")
    seconds, peak = x
    return f"{seconds:.1f} s, {peak / 2**20:,.0f} MB"


def machine(versions: dict[str, str]) -> str:
    """The sentence naming the date, the machine and the versions measured."""
    import datetime
    import platform

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    mem = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) // 2**20
    versions = {"python": platform.python_version(), **versions}
    return (f"Measured {datetime.date.today().isoformat()} on {os.cpu_count()} cores of {cpu}, {mem} GiB; "
            + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")


def write_readme_section(start: str, end: str, text: str) -> None:
    """Replace what lies between the two markers in README.md."""
    readme = README.read_text()
    if start in readme and end in readme:
        README.write_text(re.sub(f"{re.escape(start)}.*?{re.escape(end)}", lambda _: f"{start}\n{text}\n{end}",
                                 readme, flags=re.S))
