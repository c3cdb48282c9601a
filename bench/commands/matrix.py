"""The matrix and measurement options that `run` and `ab` share, and the selection they give.

One definition of each option (its name, type and help), and one place that turns them into
the suite's cells and settings, so a narrowing that works for `run` works the same for `ab`.
"""

from __future__ import annotations

import argparse
import dataclasses

from bench.errors import UsageError
from bench.store.record import Device, Phase

# Settings a command-line option overrides when given (attribute name = Settings field).
SETTING_OPTIONS = ("rounds", "budget_s", "target_ci", "min_samples", "warmup", "timeout_s",
                   "memory_limit_mb", "threads_inter", "probes", "remeasure", "paired",
                   "epoch_batches")


def csv_list(kind=str):
    def parse(text: str) -> list:
        try:
            return [kind(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list, got {text!r}") from None

    return parse


OUTPUT_FORMATS = ("text", "csv", "markdown")


def add_output_options(p: argparse.ArgumentParser, *, out_help: str, format_help: str,
                       quiet_help: str) -> None:
    """--out, --report, --format and --quiet: where a measuring command writes and prints."""
    p.add_argument("--out", default="results", help=out_help)
    p.add_argument("--report", metavar="HTML", help="also write the HTML report here")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help=format_help)
    p.add_argument("--quiet", action="store_true", help=quiet_help)


def add_matrix_options(p: argparse.ArgumentParser, default_suite: str) -> None:
    """Which cells: the suite and the options that narrow it."""
    p.add_argument("--suite", default=default_suite,
                   help="suite name in cases/suites (overview, standard, full, quick, smoke) "
                        f"or a .toml path (default: {default_suite})")
    p.add_argument("--case", action="append", dest="cases", metavar="SPEC",
                   help="case spec, repeatable: cnn, 'mobilenet:alpha=0.5,resolution=160'")
    p.add_argument("--mode", "--modes", type=csv_list(), dest="modes", metavar="M[,M]",
                   help="modes: session,frozen,optimized,eager,function,xla,keras")
    p.add_argument("--phase", "--phases", type=csv_list(), dest="phases", metavar="P[,P]",
                   help=" and/or ".join(Phase))
    p.add_argument("--device", "--devices", type=csv_list(), dest="devices", metavar="D[,D]",
                   help=f"{' and/or '.join(Device)} (default: the suite's, normally {Device.CPU})")
    p.add_argument("--batch", "--batches", type=csv_list(int), dest="batches", metavar="N[,N]")
    p.add_argument("--input", "--inputs", type=csv_list(), dest="inputs", metavar="I[,I]",
                   help="resident (batch already on the device), feed (host batch per step) and/or "
                        "dataset (a tf.data epoch per measured call)")
    p.add_argument("--epoch-batches", type=int, dest="epoch_batches", metavar="N",
                   help="dataset input: distinct batches per epoch (one measured call)")
    p.add_argument("--threads", type=csv_list(), dest="threads", metavar="T[,T]",
                   help="CPUs per worker, each a matrix value: e.g. 1,all (pinned; TF's "
                        "intra-op pool sized to match; default: the suite's, normally all)")


def add_measurement_options(p: argparse.ArgumentParser) -> None:
    """How each worker measures."""
    p.add_argument("--budget", type=float, dest="budget_s", help="seconds of sampling per cell")
    p.add_argument("--target-ci", type=float, help="stop when the median's CI is within this")
    p.add_argument("--min-samples", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--timeout", type=float, dest="timeout_s", help="seconds per cell worker")
    p.add_argument("--memory-limit-mb", type=int, help="kill a worker above this resident MB")
    p.add_argument("--inter-threads", type=int, dest="threads_inter",
                   help="inter-op threads (default: min(threads, 2))")
    p.add_argument("--no-paired", dest="paired", action="store_false", default=None,
                   help="skip the paired (alternating with eager) speed-up measurement")


def selection(args: argparse.Namespace):
    """(suite, cells, settings) from the options; every value validated before any work."""
    from bench.engine import plan

    suite = plan.load_suite(args.suite)
    cells = plan.expand(suite, cases=args.cases, modes=args.modes, phases=args.phases,
                        batches=args.batches, inputs=args.inputs, devices=args.devices,
                        threads=args.threads)
    overrides = {k: getattr(args, k) for k in SETTING_OPTIONS
                 if getattr(args, k, None) is not None}
    settings = plan.make_settings({**dataclasses.asdict(suite.settings), **overrides},
                                  where="command-line options")
    if not cells:
        raise UsageError("the selection leaves no cells to run")
    return suite, cells, settings
