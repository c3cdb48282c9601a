"""Command-line entry point: one subcommand per module, each small and independent.

Every command module exposes `add_parser(subparsers)` (which sets `func` on its parser) and
returns an exit code from that function: 0 fine, 1 some cells failed or regressed, 2 bad usage
or input, 3 results could not be written (disk full, I/O error; what was written is kept),
128 + N stopped by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP). A `UsageError` anywhere
becomes one readable line on stderr and exit code 2; no traceback wall for mistakes a user
can make.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from bench.engine import signals
from bench.errors import WRITE_FAILED, UsageError
from bench.store.atomic import OutputError
from bench.store.paths import printable
from bench.store.runfiles import StoreWriteError

# A full disk, quota or read-only file system while writing a report, baseline or page.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)

# Modules that register a subcommand. Importing them must not import TensorFlow.
COMMAND_MODULES = (
    "bench.commands.cases",
    "bench.commands.run",
    "bench.commands.table",
    "bench.commands.debug",
    "bench.commands.compare",
    "bench.commands.baseline",
    "bench.commands.history",
    "bench.commands.overhead",
    "bench.commands.stability",
    "bench.commands.gate",
    "bench.commands.gatecheck",
    "bench.commands.ab",
    "bench.commands.tfenv",
    "bench.commands.noise",
    "bench.commands.report",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep it to one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = ["run"]  # the default job: the standard suite on the CPU
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad option (its one line is printed) or --help: a code
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with signals.stop_on_signals():
            return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreWriteError as exc:
        print(f"error: {exc.strerror}", file=sys.stderr)
        return WRITE_FAILED
    except OutputError as exc:  # a report, page, CSV or baseline (bench.store.atomic); named
        print(f"error: cannot write {printable(exc.filename)}: {exc.strerror}", file=sys.stderr)
        return WRITE_FAILED
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        print(f"error: cannot write {printable(exc.filename or 'a file')}: {exc.strerror}",
              file=sys.stderr)
        return WRITE_FAILED
    except KeyboardInterrupt as exc:
        print(signals.reason(exc) + getattr(exc, "note", ""), file=sys.stderr)
        return signals.exit_code(exc)
