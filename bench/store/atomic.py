"""Writing an output file all at once, and refusing a target that is not ours to replace.

Every file the suite replaces (HTML reports and their CSV tables, trends pages, baselines) goes
through `write_atomically`: the bytes go to a temporary file beside the target, are fsynced, and
the temporary file is renamed over the target. A failure part-way (full disk, a folder deleted
meanwhile, an exception while rendering) leaves the previous file as it was; a rename replaces
a symbolic link itself, never the file it points to. The temporary file is created with mode
0666 and so follows the umask like any other output (`tempfile.mkstemp` would make it 0600).

`check_replaceable` is the check before any work: a symbolic link, or a file that holds a run,
a history or a baseline (its first line is a JSON header, record or history line), is refused
with one line, so `ln -s results/RUN.jsonl r.html; bench report ... -o r.html` cannot turn a
run into HTML.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path

from bench.errors import UsageError
from bench.store.paths import printable

# First-line kinds of the files the suite keeps: run files (and baselines, which are run
# files) and history files. An output never replaces one.
PROTECTED_KINDS = ("header", "record", "footer", "history")


class OutputError(OSError):
    """An output could not be written; `filename` is the output, `strerror` says why."""


def write_atomically(target: str | os.PathLike, data: bytes | str) -> Path:
    """Write `data` to `target` in one rename: the old file stays intact on any failure.

    Raises OutputError naming the target (`filename`), so "disk full" says which file it was.
    """
    target = Path(target)
    if isinstance(data, str):
        # A file name that is not UTF-8, shown in a page, has its bad bytes shown as U+FFFD.
        data = printable(data).encode("utf-8")
    temp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if not target.parent.is_dir():
            raise OutputError(exc.errno, f"its folder {target.parent} no longer exists",
                              str(target)) from exc
        raise OutputError(exc.errno, exc.strerror or str(exc), str(target)) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return target


def check_replaceable(path: str | os.PathLike, what: str) -> Path:
    """`path` unless it is a symbolic link or holds a run, history or baseline; else UsageError."""
    path = Path(path)
    if path.is_symlink():
        raise UsageError(f"{what} {path}: is a symbolic link; refusing to write through it "
                         "(give the real file name, or remove the link)")
    kind = first_line_kind(path)
    if kind in PROTECTED_KINDS:
        what_it_is = "a history file" if kind == "history" else "a run file"
        raise UsageError(f"{what} {path}: holds {what_it_is}; refusing to replace it "
                         "(give another name)")
    return path


def first_line_kind(path: Path) -> str | None:
    """The `kind` of a JSON first line, None for anything else (or no file)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
    except OSError:
        return None
    try:
        data = json.loads(first.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data.get("kind") if isinstance(data, dict) else None
