"""Progress of long conversions on stderr: the stage, the layers done, the weights' size.

The CLI opens a `Progress` around a conversion; code deep inside (an exporter's loop over
nodes) reports through `current()` without being handed anything. Nothing is shown for
conversions that finish within DELAY seconds, under `--json`, or when stderr is not a terminal
(IRBRIDGE_PROGRESS=1 forces it on, for tests and logs).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time

DELAY = 2.0  # seconds before anything is shown

_current: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("irbridge_progress", default=None)


class Progress:
    """Stages of one conversion; shown with rich after DELAY seconds, if enabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.stage_name, self.done, self.total, self.weights = "starting", 0, None, 0
        self._display = None
        self._task = None
        self._plain, self._printed = False, None
        self._lock = threading.Lock()
        self._timer = threading.Timer(DELAY, self._show) if enabled else None

    # --- reporting (any code, through current()) ---------------------------------------------
    def stage(self, name: str, total: int | None = None, weights: int | None = None) -> None:
        with self._lock:
            self.stage_name, self.done, self.total = name, 0, total
            if weights is not None:
                self.weights = weights
            self._refresh()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            self._refresh()

    def describe(self) -> str:
        count = f" {self.done}/{self.total} layers" if self.total else ""
        size = f", {self.weights / 2**20:,.0f} MB of weights" if self.weights else ""
        return f"{self.stage_name}{count}{size}"

    # --- display ----------------------------------------------------------------------------
    def _show(self) -> None:
        if not sys.stderr.isatty():  # forced on for a log: plain lines, one per stage
            with self._lock:
                self._plain = True
                self._refresh()
            return
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        with self._lock:
            self._display = Bar(TextColumn("[bold]irbridge[/bold] {task.description}"), BarColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._task = self._display.add_task(self.describe(), total=self.total)
            self._display.start()
            self._refresh()

    def _refresh(self) -> None:
        if self._plain and self.stage_name != self._printed:
            self._printed = self.stage_name
            print(f"irbridge: {self.describe()}", file=sys.stderr, flush=True)
        if self._display is not None:
            self._display.update(self._task, description=self.describe(), completed=self.done, total=self.total)

    def __enter__(self) -> Progress:
        self._token = _current.set(self)
        self._start = time.perf_counter()
        if self._timer is not None and DELAY <= 0:
            self._timer = None
            self._show()
        elif self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if self._display is not None:
                self._display.stop()
        _current.reset(self._token)


class _Silent:
    def stage(self, name, total=None, weights=None):
        pass

    def advance(self, n=1):
        pass


_SILENT = _Silent()


def current():
    """The conversion's Progress, or a silent stand-in outside one."""
    return _current.get() or _SILENT


def for_cli(json_output: bool) -> contextlib.AbstractContextManager:
    """The CLI's progress: on for a terminal (or IRBRIDGE_PROGRESS=1), off under --json."""
    forced = os.environ.get("IRBRIDGE_PROGRESS")
    if forced is not None:
        enabled = forced not in ("0", "")
    else:
        enabled = not json_output and sys.stderr.isatty()
    return Progress(enabled)
