"""Checking that an output path can be written before any work is done.

Permissions, read-only mounts, /proc, a file where a directory should be: the only reliable
test is to try. So these helpers create the directory (as the command would) and a probe file
in it, then remove the probe. A path that fails becomes one UsageError (exit 2) before a run
spends minutes measuring, instead of a traceback, or a good run reported as failed, at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from bench.errors import UsageError

# The project's folders, relative to the working directory (where the user runs the suite),
# never inside the installed package: recorded baselines (committed with the repo; the CI gate
# runs from its root) and the append-only history of runs.
BASELINE_DIR = Path("baselines")
DEFAULT_HISTORY = Path("history") / "history.jsonl"


def writable_dir(path: str | os.PathLike, what: str) -> Path:
    """`path` as a directory files can be created in (created if missing); else UsageError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: exists and is not a directory")
    _make_and_probe(path, what, path)
    return path


def writable_file(path: str | os.PathLike, what: str) -> Path:
    """`path` as a file that can be written (its directory is created if missing, the file
    itself is not touched); else UsageError."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{what} {path}: the file is not writable")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is not a directory")
    _make_and_probe(parent, what, path)
    return path


def _make_and_probe(directory: Path, what: str, shown: Path) -> None:
    """Create `directory` if missing, then prove a file can be written in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what} {shown}: cannot create the directory {directory} "
                         f"({exc.strerror or exc})") from None
    _probe(directory, what, shown)


def _probe(directory: Path, what: str, shown: Path) -> None:
    probe = directory / f".bench-write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    except OSError as exc:
        raise UsageError(f"{what} {shown}: cannot write there ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def printable(text: str | os.PathLike) -> str:
    """A path (or text holding one) that can be printed and put in UTF-8 files: the bytes of a
    file name that is not valid UTF-8 (which Python keeps as lone surrogates) show as U+FFFD."""
    try:
        return os.fsencode(text).decode("utf-8", errors="replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return os.fspath(text).encode("utf-8", errors="replace").decode("utf-8")
