"""Atomic writes: a failed run leaves no partial file and never clobbers a good one.

Temporaries live beside the output as `.<name>.irbridge-tmp-<pid>-<random>`: an exception (or
SIGTERM/Ctrl-C, which the CLI turns into one) removes them; a process killed outright cannot,
so each later write into the folder removes the temporaries of processes no longer alive."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = "irbridge-tmp-"


def scratch_dir(folder: Path) -> Path:
    """A temporary directory in `folder`, named so that a later run can tell it is stale."""
    return Path(tempfile.mkdtemp(prefix=f".{TMP_MARK}{os.getpid()}-", dir=folder))


def remove_stale_temporaries(folder: Path) -> None:
    """Remove temporaries left in `folder` by irbridge processes that no longer run."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if TMP_MARK not in name:
            continue
        pid = name.split(TMP_MARK, 1)[1].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    On an exception the temporary file or directory is removed and `path` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final.parent)
    prefix = f".{final.name}.{TMP_MARK}{os.getpid()}-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp/mkdtemp make 0600/0700: give what a plain open() would
            os.chmod(tmp, _default_mode(directory))
        if directory and final.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.{TMP_MARK}{os.getpid()}-old-", dir=final.parent))
            old.rmdir()
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _default_mode(directory: bool) -> int:
    """The mode a new file (0666) or directory (0777) gets under the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def prefetch_mapped(values) -> None:
    """Ask the kernel to read ahead the files behind external (memory-mapped) weights among
    `values`, about to be copied: one sequential read instead of a page fault per 4 KB page
    (measured: copying VGG-16's 553 MB from a mapping 0.2-0.8 s without, 0.13-0.4 s with)."""
    import mmap

    import onnx_ir as ir

    for v in values:
        tensor = getattr(v, "const_value", None)
        if not isinstance(tensor, ir.ExternalTensor) or not tensor.nbytes or not hasattr(mmap, "MADV_WILLNEED"):
            continue
        tensor.numpy()  # maps the file (no page is read yet)
        raw = getattr(tensor, "raw", None)
        if isinstance(raw, mmap.mmap):
            start = (tensor.offset or 0) // mmap.PAGESIZE * mmap.PAGESIZE
            raw.madvise(mmap.MADV_WILLNEED, start, min(len(raw), (tensor.offset or 0) + tensor.nbytes) - start)


def release_mapped(values) -> None:
    """Unmap the files behind external (memory-mapped) weights among `values` (onnx_ir Values):
    their pages leave this process's memory, and are mapped again if the weight is read again.
    A mapping that an array still views stays mapped (until that array is gone), but its pages
    are dropped all the same (madvise)."""
    import onnx_ir as ir

    for v in values:
        tensor = getattr(v, "const_value", None)
        if isinstance(tensor, ir.ExternalTensor):
            raw = tensor.raw
            try:
                tensor.release()
            except BufferError:  # an array still views the mapping: drop its pages, keep it
                _drop_pages(raw)


def _drop_pages(raw) -> None:
    """madvise(MADV_DONTNEED) over a read-only file mapping: its resident pages leave the
    process (they are the file's, so nothing is lost; a later read faults them in again)."""
    import mmap

    if isinstance(raw, mmap.mmap) and not raw.closed and len(raw) and hasattr(mmap, "MADV_DONTNEED"):
        try:
            raw.madvise(mmap.MADV_DONTNEED)
        except OSError:  # a platform that refuses the advice: the pages stay, as before
            pass
