"""The vocabularies declared once: statuses, setup stages, how a value is shown."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bench.store.record import (
    FAILED_STATUSES,
    SETUP_STAGES,
    STATUSES,
    Status,
    is_failed,
    severity,
    worst_status,
)
from reports.format import format_value

ROOT = Path(__file__).resolve().parents[1]


def test_statuses_are_ordered_by_severity_and_failed_is_declared_once():
    assert [s.value for s in STATUSES] == ["ok", "skipped", "error", "timeout", "crashed"]
    assert [severity(s) for s in STATUSES] == list(range(len(STATUSES)))
    assert set(FAILED_STATUSES) == {"error", "timeout", "crashed"}
    assert not is_failed("ok") and not is_failed(Status.SKIPPED) and is_failed("timeout")
    assert worst_status(["ok", "crashed", "skipped"]) == "crashed"
    assert severity("no-such-status") > severity("crashed")


def test_failed_statuses_are_not_spelled_out_outside_the_registry():
    spelled = re.compile(r"\(\s*\"error\",\s*\"timeout\",\s*\"crashed\"\s*\)|_SEVERITY\s*=")
    for path in [*ROOT.glob("bench/**/*.py"), *ROOT.glob("reports/**/*.py")]:
        if path.name != "record.py":
            assert not spelled.search(path.read_text()), path


def test_every_setup_stage_a_mode_emits_is_declared():
    emitted = set()
    for path in ROOT.glob("bench/**/*.py"):
        emitted |= {name.lower() for name in re.findall(r"SetupStage\.(\w+)", path.read_text())}
    assert emitted >= {"build", "import", "first_call"}
    assert emitted <= set(SETUP_STAGES)


def test_one_value_formatter():
    assert format_value(True) == "yes" and format_value(np.bool_(False)) == "no"
    assert format_value(None) == "" and format_value(math.nan, missing="-") == "-"
    assert format_value(np.int64(12345)) == "12345"
    assert format_value(12345, grouping=True) == "12,345"
    assert format_value(1234.56) == "1235" and format_value(1234.56, grouping=True) == "1,235"
    assert format_value(3.0) == "3" and format_value(0.012345) == "0.0123"
    assert format_value(math.inf) == "inf" and format_value("a\nb") == "a b"


def test_imports_flow_one_way_store_to_reports_to_commands():
    """bench's engine and store never import reports; only bench/commands does."""
    uses_reports = re.compile(r"^\s*(from|import) reports\b", re.M)
    for path in ROOT.glob("bench/**/*.py"):
        if "commands" not in path.parts:
            assert not uses_reports.search(path.read_text()), path
    for path in ROOT.glob("reports/**/*.py"):
        assert "bench.commands" not in path.read_text(), path


# What reports/ may read of bench: the record and its store, the statistics, the registries
# (modes, probes), the A/B rule; never the engine's running parts or a private name.
REPORTS_MAY_IMPORT = {"bench.store.record", "bench.store.runfiles", "bench.stats.samples",
                      "bench.stats.replicates",
                      "bench.stats.ab", "bench.errors", "bench.store.paths", "bench.modes",
                      "bench.probes", "bench.probes.table", "bench.units",
                      "bench.store.pytest_benchmark_json",
                      "bench.store.atomic"}


def test_reports_read_only_the_record_store_statistics_and_registries():
    import ast

    for path in ROOT.glob("reports/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench"):
                assert node.module in REPORTS_MAY_IMPORT, (path.name, node.module)
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, node.module, private)


def test_no_import_cycle_between_store_and_its_formats():
    import subprocess
    import sys

    for first in ("bench.store.runfiles", "bench.store.pytest_benchmark_json"):
        subprocess.run([sys.executable, "-c", f"import {first}"], check=True, cwd=ROOT)
    source = (ROOT / "bench" / "store" / "pytest_benchmark_json.py").read_text()
    assert "from bench.store.runfiles" not in source  # the format reads the record, not the store


def test_reports_never_import_tensorflow():
    """Checked in a fresh interpreter: other tests in this process may have imported TF."""
    import subprocess
    import sys

    modules = sorted(p.stem for p in (ROOT / "reports").glob("*.py") if p.stem != "__init__")
    code = (f"import importlib, sys; [importlib.import_module('reports.' + m) for m in {modules}]"
            "; import bench.cli; bench.cli.build_parser(); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.split() == ["False"]


def test_the_probe_table_is_one_row_per_probe_and_the_old_names_are_views_of_it():
    import subprocess
    import sys

    from bench.probes import AIDS, BETTER, KEYS
    from bench.probes.table import PROBE_TABLE, Probe

    keys = [p.key for p in PROBE_TABLE]
    assert len(keys) == len(set(keys)) and all(k.startswith("dbg_") for k in keys)
    assert tuple(keys) == KEYS
    assert {p.key: p.better for p in PROBE_TABLE if p.better} == BETTER
    assert tuple(p.key for p in PROBE_TABLE if p.aid) == AIDS
    assert all(p.better for p in PROBE_TABLE if p.aid)  # an aid that works is a better value
    assert all(p.question[0].isdigit() and p.meaning for p in PROBE_TABLE)
    with pytest.raises(ValueError, match="better must be one of"):
        Probe("dbg_x", "1. ?", "x", better="more")
    code = ("import sys, bench.probes.table, bench.probes.doc; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.split() == ["False"]


def test_vocabularies_are_their_words_so_run_files_keep_plain_strings():
    import json

    from bench.engine.plan import PROBE_POLICIES, ProbePolicy
    from bench.stats.ab import Verdict
    from bench.store.record import (
        DEVICES,
        INPUT_STYLES,
        MEASURING_STAGES,
        PHASES,
        TIME_STAGES,
        Cell,
    )
    from reports.compare import FAILING_VERDICTS, CompareVerdict

    assert PHASES == ("infer", "train") and DEVICES == ("cpu", "gpu")
    assert INPUT_STYLES == ("resident", "feed", "dataset")
    assert PROBE_POLICIES == ("once", "infer", "all", "none")
    assert PHASES[0] == ProbePolicy.INFER  # the same word in both vocabularies
    assert TIME_STAGES == ("start", "inputs", "setup", "first_call", "equivalence", "warmup",
                           "sampling", "probes", "reference", "paired", "teardown", "lost")
    assert MEASURING_STAGES == ("warmup", "sampling", "paired")
    assert tuple(CompareVerdict) == ("regression", "improvement", "same", "new", "missing",
                                     "changed")
    assert FAILING_VERDICTS == ("regression", "changed")
    assert "failed" in tuple(Verdict)
    cell = Cell("cnn", "", "eager", PHASES[1], device=DEVICES[0], input=INPUT_STYLES[2])
    assert json.loads(json.dumps(cell.__dict__)) == {
        "case": "cnn", "config": "", "mode": "eager", "phase": "train", "device": "cpu",
        "input": "dataset", "batch": 1, "threads": "all"}
    assert cell.key == "cnn/eager/train/cpu/dataset/b1/tall"


def test_vocabulary_options_offer_every_word_of_their_enum(capsys):
    """Choices are built from the enums (`gate --probes` once lost `infer`), and argparse's error
    lists them as words, not as the members' reprs."""
    from bench.cli import main

    for args, choices in [(("run", "--probes", "some"), "'once', 'infer', 'all', 'none'"),
                          (("debug", "--phase", "predict"), "'infer', 'train'"),
                          (("debug", "--input", "stream"), "'resident', 'feed', 'dataset'"),
                          (("overhead", "--phase", "predict"), "'infer', 'train'")]:
        assert main(list(args)) == 2
        assert f"(choose from {choices})" in capsys.readouterr().err, args
