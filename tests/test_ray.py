"""`bench run --ray`: the same answers as a local run, one cell per node slot, failures contained.

One Ray cluster is started for the module (ray.cluster_utils.Cluster: a head and two nodes,
three raylets on this machine; each node offers one `bench_slot`, so the scheduler sees two
nodes' slots exactly as on a real cluster, and a node can be removed mid-cell like a machine
that goes away) and stopped after it; the drivers under test are real `python -m bench run`
processes that join it by address. The SIGINT test uses `--ray` alone, the in-process cluster
the driver starts itself, to show that one is gone after the run too. The tests skip only when
Ray is not importable (the `ray` extra; CI installs it).
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import descendants, sigint_default, tiny_suite

from bench.store.runfiles import load_run

ROOT = Path(__file__).resolve().parent.parent
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (the 'ray' extra)")
MB = 1024 * 1024


def _suite(tmp_path: Path, modes: list[str], batches=(1, 2), budget: float = 0.05) -> Path:
    return tiny_suite(tmp_path, modes, budget, batches, extra="timeout_s = 120")


def _env(extra: dict | None = None) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_USAGE_STATS_ENABLED": "0",
            **(extra or {})}


def _bench(args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=_env(env),
                          capture_output=True, text=True, timeout=timeout)


def _runs(out: Path):
    return [load_run(p) for p in sorted(out.glob("*.jsonl"))]


def _alive(pids) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _gone_within(pids, seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    return _alive(pids)


@pytest.fixture(scope="module")
def cluster():
    """A head without a slot and two fake nodes with one bench_slot each, all on this machine
    (so a test can remove a node that measures without losing the head); every Ray process
    is gone after the module."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    node_args = dict(num_cpus=1, resources={"bench_slot": 1}, object_store_memory=80 * MB)
    started = Cluster(initialize_head=True,
                      head_node_args=dict(num_cpus=1, object_store_memory=80 * MB,
                                          include_dashboard=False))
    pids: set[int] = set()
    try:
        started.add_node(**node_args)
        started.add_node(**node_args)
        started.wait_for_nodes()
        for node in started.list_all_nodes():
            for infos in node.all_processes.values():
                pids.update(info.process.pid for info in infos)
        yield started
    finally:
        started.shutdown()
    assert not _gone_within(pids, 20), "Ray processes outlived the test cluster"


def test_without_ray_the_option_is_one_line_and_exit_2(tmp_path):
    blocked = ("import sys; sys.modules['ray'] = None; from bench.cli import main; "
               f"sys.exit(main(['run', '--suite', {str(_suite(tmp_path, ['eager']))!r}, "
               f"'--out', {str(tmp_path / 'out')!r}, '--ray']))")
    result = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "pip install -e '.[cpu,ray]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def _group(modes, node=True, done=0):
    from bench.cluster.driver import _Group
    from bench.cluster.node import GroupJob, NodeInfo
    from bench.store.record import Cell

    cells = [(0, Cell("cnn", "", mode, "infer", batch=2)) for mode in modes]
    job = GroupJob(run_id="r", group=cells[0][1].group_key, cells=cells, probe=set(),
                   options=None, profiles=[("cpu", "all")], log_dir="/tmp", timeout_s=1,
                   memory_limit_mb=None, threads_inter=0, slowdown=None)
    return _Group(job, NodeInfo("abcdef123", "host") if node else None, done)


def test_a_lost_group_records_its_current_cell_and_resubmits_the_rest():
    from bench.cluster.driver import _lost

    recorded = []
    group = _group(["eager", "function", "session"], done=1)
    retry = _lost(group, RuntimeError("node died"), lambda g, r: recorded.append(r))
    assert [(r.cell.mode, r.status) for r in recorded] == [("function", "crashed")]
    assert "node lost (RuntimeError: node died)" in recorded[0].reason
    assert recorded[0].node == "host-abcdef"
    assert [c.mode for _, c in retry.job.cells] == ["session"] and retry.node is None
    assert _lost(_group(["eager", "function"], done=1), RuntimeError("x"),
                 lambda g, r: None) is None  # the lost cell was the last: nothing to resubmit


def test_a_group_that_never_started_is_tried_once_more_then_ends_the_run():
    from bench.cluster.driver import _lost

    unstarted = _group(["eager", "function"], node=False)
    retry = _lost(unstarted, RuntimeError("no GPU"), lambda g, r: None)
    assert retry.attempts == 2 and len(retry.job.cells) == 2
    with pytest.raises(RuntimeError, match="could not start on the cluster"):
        _lost(retry, RuntimeError("no GPU"), lambda g, r: None)


def test_a_usage_error_on_a_node_ends_the_run_with_its_message():
    from bench.cluster.driver import _lost
    from bench.errors import UsageError

    class TaskError(Exception):  # what ray.exceptions.RayTaskError carries: the cause
        cause = UsageError("device 'gpu' requested but TensorFlow sees no GPU")

    with pytest.raises(UsageError, match="sees no GPU"):
        _lost(_group(["eager"], node=False), TaskError(), lambda g, r: None)


def test_progress_counts_cells_per_node():
    import io

    from bench.engine.progress import Progress
    from bench.store.record import Cell, Record

    stream = io.StringIO()
    progress = Progress(3, stream=stream)
    for node in ("a-1", "b-2", "a-1"):
        progress.done(Record(Cell("cnn", "", "eager", "infer"), "ok"), node)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/3] ok") and "@a-1" in lines[0] and "left" in lines[0]
    assert lines[-1].endswith("per node: a-1 2, b-2 1")


@needs_ray
def test_cluster_run_matches_a_local_run_and_groups_never_share_a_slot(tmp_path, cluster):
    suite = _suite(tmp_path, ["eager", "function"])  # 2 groups (batch 1, 2) of 2 modes
    common = ["run", "--suite", str(suite), "--quiet", "--probes", "none"]
    local = _bench([*common, "--out", str(tmp_path / "local")])
    assert local.returncode == 0, local.stderr
    remote = _bench([*common, "--out", str(tmp_path / "ray"), "--ray", cluster.address])
    assert remote.returncode == 0, remote.stderr

    def verdicts(runs):
        return sorted((r.cell.key, r.status, r.equivalent) for run in runs for r in run.records)

    ray_runs = _runs(tmp_path / "ray")
    assert verdicts(ray_runs) == verdicts(_runs(tmp_path / "local"))
    assert all(v[1] == "ok" and v[2] for v in verdicts(ray_runs))
    assert all(run.complete for run in ray_runs)
    records = [r for run in ray_runs for r in run.records]
    # One file per node that measured, named after it; its header is that node's calibration.
    for run in ray_runs:
        assert {r.node for r in run.records} == {run.header.options["ray_node"]}
        assert run.header.peak_flops and run.header.machine.get("fingerprint")
        assert "OMP_NUM_THREADS" not in run.header.machine["env"]  # as in a local run
    # A comparison group is measured on one node.
    nodes_of: dict[str, set] = {}
    for r in records:
        nodes_of.setdefault(r.cell.group_key, set()).add(r.node)
    assert len(nodes_of) == 2 and all(len(n) == 1 for n in nodes_of.values())
    # A node's slot holds one cell at a time: no two cells on one node overlap in time.
    for node in {r.node for r in records}:
        held = sorted(r.slot_held for r in records if r.node == node)
        assert all(a[1] <= b[0] for a, b in zip(held, held[1:], strict=False)), held


@needs_ray
def test_a_crashing_cell_is_recorded_and_the_cluster_run_finishes(tmp_path, cluster):
    out = tmp_path / "out"
    result = _bench(["run", "--suite", str(_suite(tmp_path, ["eager", "function"], batches=(2,))),
                     "--quiet", "--probes", "none", "--out", str(out), "--ray", cluster.address],
                    env={"BENCH_INJECT_FAULT": "eager:crash"})
    assert result.returncode == 1, result.stderr
    runs = _runs(out)
    assert runs and all(run.complete for run in runs)
    status = {r.cell.mode: r for run in runs for r in run.records}
    assert status["eager"].status == "crashed" and "SIGABRT" in status["eager"].reason
    assert Path(status["eager"].log).exists()
    assert status["function"].status == "ok" and status["function"].samples_s


@needs_ray
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_on_a_local_cluster_driver_keeps_readable_files_and_no_process(
        tmp_path, signum, code):
    """SIGINT goes to the whole process group (Ctrl-C), SIGTERM to the driver alone (CI)."""
    out = tmp_path / "out"
    suite = _suite(tmp_path, ["eager", "function", "session"], batches=(1, 2, 3), budget=1.0)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--out", str(out),
         "--quiet", "--probes", "none", "--ray"], cwd=ROOT, env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=sigint_default)
    seen: set[int] = set()
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and process.poll() is None:
            seen |= descendants(process.pid)  # raylet, gcs, Ray workers, forkservers, cells
            files = list(out.glob("*.jsonl"))
            if files and files[0].read_text().count('"kind": "record"') >= 2:
                break
            time.sleep(0.3)
        seen |= descendants(process.pid)
        assert process.poll() is None, process.communicate()[1]
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)  # what Ctrl-C in a terminal does
        else:
            process.send_signal(signum)  # what CI systems and `timeout` do
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == code, stderr
    assert "interrupted" in stderr and "marked incomplete" in stderr
    runs = _runs(out)
    assert len(runs) == 1
    run = runs[0]
    assert not run.complete and "interrupted" in run.end_reason
    assert 2 <= len(run.records) < 9 and all(r.status == "ok" for r in run.records)
    table = _bench(["table", str(out)])
    assert table.returncode == 0, table.stderr
    assert len(seen) >= 3  # the local cluster really ran (gcs, raylet, a worker at least)
    assert not _gone_within(seen, 30), "processes of the local Ray cluster outlived the run"


@needs_ray
def test_a_node_lost_mid_cell_records_that_cell_and_the_run_goes_on(tmp_path, cluster):
    """Runs last: it removes the node that measures (the module's cluster keeps the other)."""
    out = tmp_path / "out"
    suite = _suite(tmp_path, ["eager", "function", "session"], batches=(2,), budget=1.0)
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--out", str(out),
         "--quiet", "--probes", "none", "--ray", cluster.address], cwd=ROOT, env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        first = None
        while first is None and time.monotonic() < deadline and process.poll() is None:
            for path in out.glob("*.jsonl"):
                records = load_run(path).records
                first = records[0] if records else None
            time.sleep(0.2)
        assert first is not None, process.communicate()[1]
        node = next(n for n in cluster.list_all_nodes()
                    if n.node_id.startswith(first.node.rsplit("-", 1)[1]))
        assert not node.head
        doomed = set()
        for infos in node.all_processes.values():
            for info in infos:
                doomed |= {info.process.pid} | descendants(info.process.pid)
        cluster.remove_node(node)  # the machine goes away while a cell is measured
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 1, stderr
    runs = _runs(out)
    assert all(run.complete for run in runs)
    records = [r for run in runs for r in run.records]
    assert sorted(r.cell.mode for r in records) == ["eager", "function", "session"]
    lost = [r for r in records if r.status == "crashed"]
    assert len(lost) == 1 and "node lost" in lost[0].reason, [r.reason for r in records]
    assert all(r.status == "ok" for r in records if r not in lost)
    assert not _gone_within(doomed, 30), "processes of the removed node outlived it"
