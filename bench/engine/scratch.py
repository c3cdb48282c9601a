"""A private temporary directory for each worker process, removed when the worker ends.

AutoGraph writes every function it converts to `$TMPDIR/__autograph_generated_file*.py` and
removes those files only in an exit handler, which a worker never runs (it ends with
`os._exit`, or is killed on a timeout). So each worker gets a directory of its own, made by
the runner before the worker starts, set as the worker's TMPDIR (the environment variable and
`tempfile.tempdir`, which AutoGraph and TensorFlow read), and removed by the runner once the
worker is gone, however it ended: a result, an error, a crash, a timeout, or the run
interrupted (the runner's `finally`). Only a runner killed with SIGKILL leaves one behind,
named `bench-worker-*`, in the runner's own temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile

PREFIX = "bench-worker-"


def make() -> str:
    """A new private directory for one worker (in the runner's temporary directory)."""
    return tempfile.mkdtemp(prefix=PREFIX)


def use(path: str) -> None:
    """In the worker: send every temporary file of this process to `path`."""
    os.environ["TMPDIR"] = path
    tempfile.tempdir = path


def remove(path: str) -> None:
    """In the runner, once the worker has ended: the directory and whatever is in it."""
    shutil.rmtree(path, ignore_errors=True)
