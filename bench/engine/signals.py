"""Stopping cleanly on SIGTERM and SIGHUP, and workers that never outlive their runner.

CI systems and `timeout` send SIGTERM, a closed terminal sends SIGHUP; both must end a run the
way Ctrl-C does: the run file gets a `complete: false` footer naming the signal, the user gets
one line, and the exit code says what happened (130 SIGINT, 143 SIGTERM, 129 SIGHUP, i.e.
128 + the signal number). `Interrupted` subclasses KeyboardInterrupt so every existing
`except KeyboardInterrupt` cleanup path handles these signals too.

A runner killed with SIGKILL cannot clean up, so the processes it started must notice on their
own: `die_with_parent` asks the kernel (Linux `PR_SET_PDEATHSIG`) to SIGKILL the calling process
when its parent goes. Workers call it (their parent is the forkserver), and the forkserver
exits when the runner's end of its pipe closes, which the kernel does when the runner dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator

HANDLED = (signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; `reason` goes into the footer, `exit_code` to the shell."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        self.reason = f"interrupted by {self.signal_name}"
        self.exit_code = 128 + signum
        super().__init__(self.reason)


def exit_code(exc: BaseException) -> int:
    """128 + the signal's number; 130 (SIGINT) for a plain KeyboardInterrupt."""
    return getattr(exc, "exit_code", 128 + signal.SIGINT)


def reason(exc: BaseException) -> str:
    return getattr(exc, "reason", "interrupted by user (SIGINT)")


def _raise(signum: int, frame) -> None:
    # Once is enough: a second signal during cleanup must not tear the footer being written.
    for handled in HANDLED:
        signal.signal(handled, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into `Interrupted` while the block runs (main thread only)."""
    previous = {s: signal.signal(s, _raise) for s in HANDLED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def die_with_runner() -> None:
    """Called first in a worker, whose parent is the forkserver: die when the runner does.

    Every forkserver child inherits the write end of the server's "alive" pipe, and the server
    only exits once all of them are closed; a worker keeping it would keep the server, and so
    itself, alive after a runner killed with SIGKILL. Workers start no processes of their own,
    so they drop it; then the server exits with the runner and takes the worker with it.
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if server._forkserver_alive_fd is not None:
        with contextlib.suppress(OSError):
            os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    die_with_parent()


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Have the kernel send `signum` (SIGKILL) to this process when its parent exits (Linux;
    elsewhere a no-op). The parent may already be gone before the request is made; then exit
    at once.
    """
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent or parent == 1:
        os._exit(1)


def note_on_interrupt(command, note: str):
    """`command` whose interruption carries `note`, which the CLI adds to its one line: what a
    stopped command did not get to (the gate: a verdict)."""
    import functools

    @functools.wraps(command)
    def noted(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            exc.note = note
            raise

    return noted
