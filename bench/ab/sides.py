"""The two sides of an A/B comparison: which code, which interpreter, which environment.

A side is written as parts joined by `+`, each part one of

    .                       the working tree as it is (also the empty string)
    git:REV                 this repository at REV, checked out in a worktree this module
                            makes once per commit and reuses (inside the repository's git
                            directory, so it goes with the clone), first on the import path
    python:PATH             another interpreter, or a virtual environment's folder, running
                            the side's code (e.g. one with another TensorFlow release)
    env:NAME=VALUE[,...]    environment variables for this side's workers only; a comma
                            starts a new variable only where NAME= follows, so values such as
                            BENCH_INJECT_SLOWDOWN=function:infer:0.03,xla:0.05 stay whole

e.g. `git:HEAD~1`, `python:.bench-envs/tf-2.20`, `.+env:TF_ENABLE_ONEDNN_OPTS=0`.
`parse_side` only reads the text; `prepare_side` resolves it (the revision, the worktree, the
interpreter) and `SideServer.start` starts the side's server (bench.lockstep) and checks that
it speaks our protocol. Every problem is one UsageError line before anything is measured.
No TensorFlow here: the server imports it in the side's own interpreter.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import UsageError

HELLO_TIMEOUT_S = 180.0  # importing TensorFlow on a busy 2-core machine
_ENV_SPLIT = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_]*=)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# glibc's malloc adapts its mmap threshold to each process's own history of frees, so two fresh
# processes running identical eager code may serve their activations from the heap, or from
# fresh mmaps that page-fault on every step, for their whole life: with glibc's defaults the
# eager cells' B/A ratio of identical code moved between worker pairs by 20-29% (sd; cnn) and
# 8-10% (MobileNet); with these two fixed, by 1.7-1.8% and 1.8-3.5% (docs/regression-tracking.md
# has the command). Every side's workers get them unless its env: part sets them itself; the
# run file's header records them with the side's environment.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


@dataclass(frozen=True)
class SideSpec:
    """What the user wrote for one side, parsed but not yet resolved."""

    text: str
    rev: str | None = None  # git revision, None = the working tree
    python: str | None = None  # interpreter or venv path, None = this interpreter
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Side:
    """A resolved side: the code root first on the workers' path, the interpreter, the
    environment additions, and the commit its code is (None when not known)."""

    label: str  # "A" or "B"
    spec: SideSpec
    root: Path
    python: str
    env: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    dirty: bool = False

    @property
    def describe(self) -> str:
        return f"{self.label} = {self.spec.text or '.'}"


def parse_side(text: str) -> SideSpec:
    """'git:abc+env:X=1' -> SideSpec; a malformed part is a UsageError naming it."""
    rev = python = None
    env: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in (text or ".").split("+"))):
        kind, sep, value = part.partition(":")
        if part == ".":
            continue
        if not sep:
            raise UsageError(f"side {text!r}: {part!r} is not '.', git:REV, python:PATH or "
                             "env:NAME=VALUE")
        if kind == "git":
            if not value or rev is not None:
                raise UsageError(f"side {text!r}: give one git:REV with a revision")
            rev = value
        elif kind == "python":
            if not value or python is not None:
                raise UsageError(f"side {text!r}: give one python:PATH with a path")
            python = value
        elif kind == "env":
            for item in _ENV_SPLIT.split(value):
                name, eq, setting = item.partition("=")
                if not eq or not _ENV_NAME.fullmatch(name):
                    raise UsageError(f"side {text!r}: {item!r} is not NAME=VALUE")
                env.append((name, setting))
        else:
            raise UsageError(f"side {text!r}: unknown kind {kind!r}; use git:REV, python:PATH "
                             "or env:NAME=VALUE")
    return SideSpec(text or ".", rev, python, tuple(env))


def repository_root() -> Path:
    """The root of the code this driver runs (the working tree, for `.`)."""
    return Path(__file__).resolve().parents[2]


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise UsageError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                         else f"git {' '.join(args)} failed")
    return done.stdout.strip()


def prepare_side(spec: SideSpec, label: str, root: Path | None = None) -> Side:
    """Resolve a side: its revision's worktree (made once, reused), its interpreter."""
    root = root or repository_root()
    commit, dirty, code = None, False, root
    if spec.rev is not None:
        try:
            commit = _git(root, "rev-parse", "--verify", "--quiet", f"{spec.rev}^{{commit}}")
        except UsageError:
            raise UsageError(f"side {label} ({spec.text}): unknown revision {spec.rev!r} in "
                             f"{root}") from None
        code = worktree(root, commit)
        if not (code / "bench" / "lockstep.py").is_file():
            raise UsageError(f"side {label} ({spec.text}): revision {commit[:12]} is too old "
                             "to speak the A/B worker protocol (it has no bench/lockstep.py)")
    else:
        with contextlib.suppress(UsageError, OSError):
            commit = _git(root, "rev-parse", "HEAD")
            dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    python = interpreter(spec, label)
    return Side(label, spec, code, python, {**ALLOCATOR_ENV, **dict(spec.env)}, commit, dirty)


def interpreter(spec: SideSpec, label: str) -> str:
    """The side's Python: this one, or python:PATH (an executable, or a venv's folder)."""
    if spec.python is None:
        return sys.executable
    path = Path(spec.python).expanduser()
    if path.is_dir():
        path = path / "bin" / "python"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise UsageError(f"side {label} ({spec.text}): no such interpreter {path} (give a "
                         "python executable or a virtual environment's folder)")
    return str(path.absolute())


def worktree(root: Path, commit: str) -> Path:
    """A detached worktree of `commit` inside the repository's git directory, made once."""
    common = Path(_git(root, "rev-parse", "--git-common-dir"))
    if not common.is_absolute():
        common = root / common
    base = common / "bench-worktrees"
    base.mkdir(exist_ok=True)
    path = base / commit
    with open(base / f"{commit}.lock", "w") as lock:  # two A/B runs making the same one
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / ".git").exists():
            _git(root, "worktree", "prune")
            _git(root, "worktree", "add", "--detach", "--force", str(path), commit)
    return path


class SideServer:
    """The side's `python -m bench.lockstep` process: forks a fresh worker per request."""

    def __init__(self, side: Side, process: subprocess.Popen, hello: dict, log: Path):
        self.side, self.process, self.hello, self.log = side, process, hello, log

    @classmethod
    def start(cls, side: Side, log: Path, tmpdir: Path) -> SideServer:
        from bench.lockstep import HELLO, PROTOCOL

        env = {**os.environ, **side.env, "TMPDIR": str(tmpdir),
               "PYTHONPATH": os.pathsep.join([str(side.root)]
                                             + ([os.environ["PYTHONPATH"]]
                                                if os.environ.get("PYTHONPATH") else []))}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as err:
            process = subprocess.Popen([side.python, "-m", "bench.lockstep"], cwd=side.root,
                                       env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=err, start_new_session=False)
        line = _read_line(process, HELLO_TIMEOUT_S)
        what = f"side {side.label} ({side.spec.text})"
        try:
            hello = json.loads(line) if line else {}
        except json.JSONDecodeError:
            hello = {}
        if hello.get("hello") != HELLO:
            process.kill()
            process.wait()
            raise UsageError(f"{what}: its worker server did not start: {_why(log)}")
        if hello.get("protocol") != PROTOCOL:
            process.kill()
            process.wait()
            raise UsageError(f"{what}: speaks A/B worker protocol {hello.get('protocol')}, "
                             f"this driver speaks {PROTOCOL}")
        if Path(hello.get("bench", "")).resolve() != (side.root / "bench").resolve():
            process.kill()
            process.wait()
            raise UsageError(f"{what}: imported bench from {hello.get('bench')}, not from "
                             f"{side.root} (is another copy installed non-editable there?)")
        return cls(side, process, hello, log)

    def fork(self, socket_path: str, token: str, log: Path, preload: tuple[str, ...] = ()) -> None:
        """Ask the server for a worker; it imports `preload` first (once; older revisions'
        servers ignore the field and have Keras imported anyway)."""
        command = {"op": "fork", "socket": socket_path, "token": token, "log": str(log),
                   "preload": list(preload)}
        try:
            self.process.stdin.write((json.dumps(command) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeError(f"side {self.side.label}'s worker server is gone "
                               f"(see {self.log})") from exc

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _read_line(process: subprocess.Popen, timeout_s: float) -> str:
    """The server's first stdout line, or '' when it exits or says nothing in time."""
    deadline, data = time.monotonic() + timeout_s, b""
    fd = process.stdout.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        chunk = os.read(fd, 4096)
        if not chunk:
            return ""
        data += chunk
    return data.decode("utf-8", "replace").strip()


def _why(log: Path) -> str:
    """The server log's telling line: TensorFlow missing, the module missing, or the last."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()
                 if line.strip()]
    except OSError:
        lines = []
    for line in reversed(lines):
        if "No module named" in line:
            name = line.split("No module named", 1)[1].strip(" '\"")
            if name.startswith("tensorflow"):
                return "TensorFlow is not installed in that interpreter"
            if name.startswith("bench"):
                return "that code has no A/B worker protocol (bench.lockstep)"
            return f"a package is missing there ({name})"
    return (lines[-1] if lines else "no output") + f" (log: {log})"
