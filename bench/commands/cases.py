"""`python -m bench cases [SPEC ...]`: the workloads, their configurations, MACs and parameters."""

from __future__ import annotations

import argparse

from bench.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cases", help="list the cases with their default configuration, MACs and parameters",
        description="List cases. Give case specs such as "
                    "'mobilenet:alpha=0.75,resolution=192' to see an override.")
    parser.add_argument("specs", nargs="*", metavar="SPEC",
                        help="case specs: name[:key=value,...]; tuples use '/': "
                             "conv_filters=32/64; also keras:PATH, savedmodel:PATH[:SIGNATURE], "
                             "module:PACKAGE.MODULE:FUNCTION")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from cases import CASES, ConfigError, case_summary, get_workload
    from cases.plugins import registered
    from cases.spec import describe_defaults

    specs = args.specs or [*CASES, *registered()]  # built-in, then installed plug-in cases
    rows = []
    for spec in specs:
        try:
            workload = get_workload(spec)
        except ConfigError as exc:
            raise UsageError(" ".join(str(exc).split())) from None
        shapes = getattr(workload, "model_inputs", None)  # a model file: every named input
        shape = (", ".join(f"{t.name} {_dims(t.shape)} {t.dtype}" for t in shapes) if shapes
                 else _dims(workload.input_shape))
        macs = f"{workload.macs_per_image / 1e6:,.2f}" + ("~" if shapes is not None else "")
        rows.append((workload.spec, shape, macs, f"{workload.params / 1e6:,.3f}",
                     len(workload.layer_names), case_summary(workload),
                     describe_defaults(workload.config)))
    header = ("case", "input", "MMACs/image", "Mparams", "layers", "what it is")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(wd) for h, wd in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(v).ljust(wd) for v, wd in zip(row[:-1], widths, strict=True)))
        print(f"    config: {row[-1]}")
    if any(r[2].endswith("~") for r in rows):
        print("~ estimated: TF's profiler counting the FLOPs of the frozen batch-1 graph's ops")
    return 0


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
