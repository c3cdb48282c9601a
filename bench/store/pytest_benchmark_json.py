"""pytest-benchmark JSON files -> a `Run` (bench.store.record), so `bench table/report/compare`
read them.

`pytest bench/ --benchmark-only --benchmark-json out.json` (or `--benchmark-autosave`) writes
pytest-benchmark's own format: top-level `machine_info`, `commit_info`, `benchmarks`, ... Each
benchmark from `bench/test_benchmarks.py` carries its cell and everything pytest-benchmark has no
field for in `extra_info`; its raw call times are `stats["data"]` (always in --benchmark-json;
in saved files because bench/conftest.py turns on --benchmark-save-data), divided by
`extra_info["batches_per_call"]` into per-batch step times as the worker records them.

A file without raw data still loads: its records have no samples (so no derived statistics) and
pytest-benchmark's own median/mean/stddev go to `record.pytest_benchmark`. Benchmarks
that do not come from bench/ (no case/mode/phase in extra_info) are skipped with a note in
`Run.problems`. No TensorFlow here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from bench.engine.machine import fingerprint
from bench.errors import StoreError
from bench.store.record import (
    SCHEMA_VERSION,
    Device,
    InputStyle,
    Record,
    Run,
    RunHeader,
    SchemaError,
    Status,
    mode_fields,
)

DEFAULT_SUITE = "pytest-benchmark"
_TOP_LEVEL = ("machine_info", "benchmarks")
# pytest-benchmark stats copied into record.pytest_benchmark, renamed with units.
_STATS = {"median": "median_s", "mean": "mean_s", "stddev": "stddev_s", "min": "min_s",
          "max": "max_s", "iqr": "iqr_s", "rounds": "rounds", "iterations": "iterations",
          "ops": "ops"}
# extra_info keys that become Record fields of the same meaning.
_FIELDS = {"setup_s": "setup_s", "first_result_s": "first_result_s",
           "peak_rss_mb": "peak_rss_mb", "peak_device_mb": "peak_device_mb",
           "graph_nodes": "graph_nodes", "max_abs_diff": "max_abs_diff",
           "tolerance": "tolerance", "equivalent": "equivalent", "macs": "macs_per_image",
           "params": "params", "flops_per_image": "flops_per_image", "debug": "debug"}
# extra_info keys kept for reference in record.pytest_benchmark["extra_info"].
_EXTRA = ("images_per_s", "images_per_s_ci95", "warmup_rounds", "rounds", "calibration_step_s",
          "probes", "suite")


def is_pytest_benchmark_json(path: str | os.PathLike) -> bool:
    """True for a JSON object with pytest-benchmark's top-level `machine_info` and `benchmarks`."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl" or not path.is_file():
        return False  # our own run files: never parse a whole JSON-lines file to find out
    try:
        with open(path, encoding="utf-8") as f:
            if f.read(1) != "{":
                return False
            f.seek(0)
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in _TOP_LEVEL)


def load_pytest_benchmark(path: str | os.PathLike) -> Run:
    """Read one pytest-benchmark JSON file; StoreError when nothing in it is usable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path}: not a pytest-benchmark JSON file ({exc})") from None
    return run_from_json(data, str(path))


def run_from_json(data: Any, path: str = "") -> Run:
    """The Run for already-parsed pytest-benchmark JSON (`path` is only used in messages)."""
    name = path or "pytest-benchmark JSON"
    if not isinstance(data, dict) or not all(key in data for key in _TOP_LEVEL):
        raise StoreError(f"{name}: not a pytest-benchmark JSON file (expected top-level keys "
                         f"{', '.join(_TOP_LEVEL)})")
    benchmarks = data["benchmarks"]
    if not isinstance(benchmarks, list):
        raise StoreError(f"{name}: 'benchmarks' must be a list")
    run_id = _run_id(data.get("datetime"), Path(path).stem if path else "")
    records: list[Record] = []
    infos: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, bench in enumerate(benchmarks):
        label = bench.get("fullname") or bench.get("name") if isinstance(bench, dict) else None
        where = f"{name}: benchmark {label or index}"
        try:
            record, info = _record(bench, run_id)
        except (SchemaError, TypeError, ValueError, KeyError) as exc:
            problems.append(f"{where}: {exc}; skipped")
            continue
        records.append(record)
        infos.append(info)
    if benchmarks and not records:
        raise StoreError(f"{name}: none of its {len(benchmarks)} benchmarks comes from bench/ "
                         f"({problems[0]})")
    header = _header(data, run_id, infos, records)
    return Run(header, records, complete=True, path=path, problems=problems)


def _record(bench: Any, run_id: str) -> tuple[Record, dict[str, Any]]:
    if not isinstance(bench, dict):
        raise TypeError("not a JSON object")
    info = bench.get("extra_info")
    info = info if isinstance(info, dict) else {}
    missing = [k for k in ("case", "mode", "phase") if not isinstance(info.get(k), str)]
    if missing:
        raise ValueError(f"extra_info has no {', '.join(missing)} (not a bench/ benchmark)")
    cell = {"case": info["case"], "config": info.get("config") or "", "mode": info["mode"],
            "phase": info["phase"], "device": info.get("device") or Device.CPU,
            "input": info.get("input") or InputStyle.RESIDENT, "batch": info.get("batch", 1)}
    per_call = info.get("batches_per_call", 1)
    if isinstance(per_call, bool) or not isinstance(per_call, int) or per_call < 1:
        raise ValueError(f"extra_info batches_per_call must be a positive integer, got "
                         f"{per_call!r}")
    stats = bench.get("stats") if isinstance(bench.get("stats"), dict) else {}
    raw = stats.get("data")
    summary = {new: stats[old] for old, new in _STATS.items() if old in stats}
    summary.update(name=bench.get("name"), fullname=bench.get("fullname"),
                   group=bench.get("group"), raw_data=isinstance(raw, list),
                   batches_per_call=per_call,
                   extra_info={k: info[k] for k in _EXTRA if k in info})
    machine = info.get("machine") if isinstance(info.get("machine"), dict) else {}
    mode_extra = info.get("mode_extra") if isinstance(info.get("mode_extra"), dict) else {}
    obj = {
        "kind": "record", "schema": SCHEMA_VERSION, "cell": cell, "status": Status.OK,
        "run_id": run_id, "round": 0,
        # Per batch, as the worker records them: a call may cover several batches (Model.fit).
        "samples_s": [float(s) / per_call for s in raw] if isinstance(raw, list) else [],
        "images_per_step": cell["batch"] if isinstance(cell["batch"], int) else 0,
        "threads": machine.get("threads") or {},
        "batches_per_call": per_call, "pytest_benchmark": summary, **mode_fields(mode_extra),
        **{field: info[key] for key, field in _FIELDS.items() if info.get(key) is not None},
    }
    return Record.from_json(obj), info


def _header(data: dict[str, Any], run_id: str, infos: list[dict[str, Any]],
            records: list[Record]) -> RunHeader:
    machine = _machine(data, infos, records)
    suites = sorted({str(i["suite"]) for i in infos if i.get("suite")})
    options: dict[str, Any] = {"source": "pytest-benchmark",
                               "pytest_benchmark_version": data.get("version")}
    for key in ("warmup_rounds", "rounds"):
        values = sorted({i[key] for i in infos if isinstance(i.get(key), int)})
        if values:
            options[key] = values[0] if len(values) == 1 else values
    return RunHeader(run_id=run_id, suite=",".join(suites) or DEFAULT_SUITE,
                     started=str(data.get("datetime") or ""), machine=machine, options=options)


def _machine(data: dict[str, Any], infos: list[dict[str, Any]],
             records: list[Record]) -> dict[str, Any]:
    """bench/'s machine facts when present, else what pytest-benchmark's machine_info says;
    the commit is pytest-benchmark's commit_info (the checkout the benchmarks ran from)."""
    ours = next((i["machine"] for i in infos if isinstance(i.get("machine"), dict)), None)
    facts = dict(ours) if ours else _from_machine_info(data.get("machine_info"))
    commit = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    git = dict(facts.get("git") or {})
    for key, name in (("id", "commit"), ("dirty", "dirty"), ("branch", "branch")):
        if commit.get(key) is not None:
            git[name] = commit[key]
    if git:
        facts["git"] = git
    if ours and "fingerprint" not in facts:
        devices = sorted({r.cell.device for r in records}) or [Device.CPU]
        facts["fingerprint"] = fingerprint(facts, ",".join(devices))
    return facts


def _from_machine_info(info: Any) -> dict[str, Any]:
    if not isinstance(info, dict):
        return {}
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    facts = {"hostname": info.get("node"),
             "cpu_model": cpu.get("brand_raw") or info.get("processor"),
             "cores": cpu.get("count"),
             "os": " ".join(str(info[k]) for k in ("system", "release") if info.get(k)) or None,
             "python": info.get("python_version")}
    return {k: v for k, v in facts.items() if v}


def _run_id(stamp: Any, stem: str) -> str:
    """'20240101T120000Z-out': the run's start (UTC) and the file it came from."""
    try:
        when = dt.datetime.fromisoformat(str(stamp))
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC)
        text = when.strftime("%Y%m%dT%H%M%SZ")
    except ValueError:
        text = "pytest-benchmark"
    return f"{text}-{stem}" if stem else text


__all__ = ["is_pytest_benchmark_json", "load_pytest_benchmark", "run_from_json"]
