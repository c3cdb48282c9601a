"""Run files: append-only, validated on load, forgiving of damage but never silent about it."""

import json

import pytest

from bench.cli import main
from bench.store.record import SCHEMA_VERSION, Cell, Record, SchemaError
from bench.store.runfiles import RunHeader, RunWriter, StoreError, load_run


def _write(path, n=3, complete=True):
    writer = RunWriter(path, RunHeader(run_id="r1", suite="test", started="2026-01-01T00:00:00"))
    for i in range(n):
        writer.append(Record(cell=Cell("cnn", "", "eager", "infer", batch=i + 1), status="ok",
                             samples_s=[0.01, 0.011, 0.012], images_per_step=i + 1))
    if complete:
        writer.close(complete=True)
    return path


def test_round_trip(tmp_path):
    run = load_run(_write(tmp_path / "run.jsonl"))
    assert run.complete and not run.problems
    assert [r.cell.batch for r in run.records] == [1, 2, 3]
    assert run.records[0].samples_s == [0.01, 0.011, 0.012]


def test_writer_never_overwrites(tmp_path):
    path = _write(tmp_path / "run.jsonl")
    before = path.read_text()
    with pytest.raises(FileExistsError):
        RunWriter(path, RunHeader(run_id="r2", suite="x", started=""))
    assert path.read_text() == before


def test_unfinished_run_loads_as_incomplete(tmp_path):
    run = load_run(_write(tmp_path / "run.jsonl", complete=False))
    assert not run.complete and len(run.records) == 3


def test_corrupt_and_truncated_lines_are_reported_and_the_rest_kept(tmp_path):
    path = _write(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    lines.insert(2, "{not json")
    lines.insert(3, json.dumps({"kind": "record", "schema": 1, "cell": {"case": "cnn"},
                                "status": "weird"}))
    lines.append('{"kind": "record", "schema": 1, "cell": {"ca')  # truncated write
    path.write_text("\n".join(lines) + "\n")
    run = load_run(path)
    assert len(run.records) == 3
    assert len(run.problems) == 3
    assert f"{path}:3: not valid JSON" in run.problems[0]
    assert f"{path}:4:" in run.problems[1]
    assert all(str(path) in p for p in run.problems)


def test_file_without_header_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text("hello\n")
    with pytest.raises(StoreError, match="junk.jsonl:1: not a results file"):
        load_run(path)
    with pytest.raises(StoreError, match="no such results file"):
        load_run(tmp_path / "missing.jsonl")


def test_schema_rejects_bad_records():
    good = Record(cell=Cell("cnn", "", "eager", "infer"), status="ok").to_json()
    Record.from_json(good)
    for change, message in [({"schema": 99}, "schema"), ({"status": "fine"}, "status"),
                            ({"samples_s": [-1]}, "samples_s"), ({"cell": {"case": "cnn"}},
                                                                  "missing")]:
        with pytest.raises(SchemaError, match=message):
            Record.from_json({**good, **change})


def test_table_on_a_corrupt_file_warns_and_exits_2_when_unusable(tmp_path, capsys):
    path = _write(tmp_path / "run.jsonl")
    with open(path, "a") as f:
        f.write("{broken\n")
    assert main(["table", str(path)]) == 0
    err = capsys.readouterr().err
    assert "run.jsonl:6" in err
    junk = tmp_path / "junk.jsonl"
    junk.write_text("garbage\n")
    assert main(["table", str(junk)]) == 2
    assert "junk.jsonl:1" in capsys.readouterr().err


def test_one_way_to_name_a_run_file_and_a_run(tmp_path):
    import re

    from bench.store.runfiles import claim_run_file, new_run_id, run_stem

    assert re.fullmatch(r"quick-\d{8}-\d{6}", run_stem("quick"))
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", new_run_id())
    first = claim_run_file(tmp_path, run_stem("quick"))
    second = claim_run_file(tmp_path, first.stem)
    assert second.name == f"{first.stem}-2.jsonl"


def test_cell_options_are_derived_from_the_suite_settings():
    import dataclasses

    from bench.engine.plan import Settings
    from bench.engine.worker import CellOptions

    settings = Settings(warmup=3, min_samples=4, target_ci=0.05, budget_s=1.5, seed=7,
                        probes="all", paired=False, paired_budget_s=2.0, epoch_batches=5)
    options = CellOptions.from_settings(settings, cpus=(1,))
    assert (options.warmup, options.min_samples, options.target_ci, options.budget_s,
            options.seed, options.paired, options.paired_budget_s, options.epoch_batches,
            options.cpus) == (3, 4, 0.05, 1.5, 7, False, 2.0, 5, (1,))
    assert options.probes is False  # decided per cell by the runner, not copied
    shared = {f.name for f in dataclasses.fields(CellOptions)} & \
        {f.name for f in dataclasses.fields(Settings)}
    assert shared == {"warmup", "min_samples", "target_ci", "budget_s", "seed", "probes",
                      "paired", "paired_budget_s", "epoch_batches"}


# --------------------------------------------------------------------------- schema versions

V1_EXTRA = {"batches_per_call": 4, "stopped_by": "budget", "reached_target": False,
            "remeasure": "workers disagree", "eta": {"elapsed_s": 12.5, "left_s": 30.0},
            "log": "/tmp/cell.log", "node": "host-abcdef", "slot_held": [100.0, 101.5],
            "injected_slowdown": 0.1, "injected_iterations": 500, "mode_impl": "function",
            "keras_version": "3.0", "op_types_frozen": {"Conv2D": 2}}


def _v1_file(path, extra):
    header = {"kind": "header", "schema": 1, "run_id": "old", "suite": "quick",
              "started": "2026-01-01T00:00:00", "machine": {}, "options": {}, "peak_flops": {}}
    record = {"kind": "record", "schema": 1, "cell": {"case": "cnn", "config": "",
              "mode": "function", "phase": "infer"}, "status": "ok",
              "samples_s": [0.01, 0.011], "extra": extra}
    path.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n"
                    + json.dumps({"kind": "footer", "complete": True}) + "\n")
    return path


def test_a_version_1_run_file_loads_its_extra_as_declared_fields(tmp_path):
    run = load_run(_v1_file(tmp_path / "old.jsonl", V1_EXTRA))
    assert not run.problems and run.header.schema == SCHEMA_VERSION
    (record,) = run.records
    assert record.schema == SCHEMA_VERSION  # upgraded: a rewrite is one schema throughout
    assert (record.batches_per_call, record.stopped_by, record.reached_target) == (4, "budget",
                                                                                   False)
    assert record.extra_visit == "workers disagree"
    assert (record.eta_elapsed_s, record.eta_left_s) == (12.5, 30.0)
    assert (record.log, record.node, record.slot_held) == ("/tmp/cell.log", "host-abcdef",
                                                           [100.0, 101.5])
    assert (record.injected_slowdown, record.injected_iterations) == (0.1, 500)
    assert record.mode_impl == "function"
    # Unknown keys were a mode's own facts in version 1: kept, where version 2 puts them.
    assert record.mode_facts == {"keras_version": "3.0", "op_types_frozen": {"Conv2D": 2}}
    # The A/B driver's name for an extra visit lands in the same field.
    (ab,) = load_run(_v1_file(tmp_path / "ab.jsonl", {"ab_extra_pair": "undecided"})).records
    assert ab.extra_visit == "undecided" and ab.batches_per_call is None


def test_the_committed_baseline_is_version_1_and_still_loads_whole():
    from tests.runs import BASELINE_RUN

    lines = BASELINE_RUN.read_text().splitlines()
    assert json.loads(lines[0])["schema"] == 1
    run = load_run(BASELINE_RUN)
    assert not run.problems and run.complete
    assert len(run.records) == sum('"kind": "record"' in line for line in lines)
    assert all(r.batches_per_call for r in run.records if r.status == "ok")


def test_a_wrong_typed_field_in_a_run_file_is_one_readable_error(tmp_path, capsys):
    path = _write(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    bad = json.loads(lines[2])
    bad["batches_per_call"] = "4"
    lines[2] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    run = load_run(path)
    assert len(run.records) == 2
    assert run.problems == [f"{path}:3: batches_per_call must be a positive integer or null, "
                            "got '4'; line skipped"]
    # The same mistake in a version-1 file's extra is named by the field it now fills.
    old = load_run(_v1_file(tmp_path / "old.jsonl", {"stopped_by": 3}))
    assert not old.records and old.problems == [
        f"{tmp_path / 'old.jsonl'}:2: stopped_by must be a string, got 3; line skipped"]
    assert main(["table", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("batches_per_call must be") == 1 and "Traceback" not in err


def test_every_record_field_is_validated_and_unknown_versions_are_refused():
    import dataclasses

    from bench.store.record import RECORD_FIELD_TYPES

    declared = {f.name for f in dataclasses.fields(Record)} - {"cell", "status", "schema"}
    assert set(RECORD_FIELD_TYPES) == declared
    good = Record(cell=Cell("cnn", "", "eager", "infer"), status="ok").to_json()
    assert "extra" not in good
    with pytest.raises(SchemaError, match=r"schema version 0 \(this tool reads 1, 2\)"):
        Record.from_json({**good, "schema": 0})
