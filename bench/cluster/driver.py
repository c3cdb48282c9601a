"""Running a suite across a Ray cluster: one exclusive benchmark slot per node.

Placement. Every node offers one custom resource `bench_slot` (`ray start ...
--resources='{"bench_slot": 1}'`). The driver submits one Ray task per comparison group (case,
configuration, phase, device, input, batch, threads; all its rounds), and each task takes the
slot (and one GPU for GPU groups). So two groups never share a machine, and every mode of a
group, eager included, is measured on the same node: speed-ups over eager stay within one
machine. A task per group rather than an actor per node keeps scheduling Ray's job (a free
slot takes the next group; a lost node's groups can go elsewhere) and gives a group's cells one
node without bookkeeping. On the node the task runs the cells through the local isolated
worker path (bench.cluster.node), so a crashing cell costs that cell, not the Ray worker.

Records flow home as they are measured (the task is a generator). The driver writes one run
file per node: its header holds that node's machine facts, fingerprint and peak calibration,
records are appended as they arrive, and every file gets the usual footer. A node lost
mid-group records the cell it was measuring as `crashed` with the reason, and the group's
remaining cells are submitted again (to any node with a free slot). Ctrl-C, SIGTERM and
SIGHUP on the driver cancel the outstanding tasks (their workers die with them) and close
every file as incomplete. `--ray` alone (or `local`) starts an in-process cluster with one
slot, which is shut down however the run ends; nothing the run starts outlives it.

The driver never imports TensorFlow; Ray is imported only when a cluster run is asked for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.cluster.node import GroupJob, NodeInfo, run_group
from bench.engine import signals
from bench.engine.machine import ENV_FLAGS
from bench.engine.progress import Progress
from bench.errors import UsageError
from bench.store.record import ALL_THREADS, FAILED_STATUSES, Cell, Device, Record, Status
from bench.store.runfiles import RunHeader, RunWriter, claim_run_file, new_run_id

SLOT = "bench_slot"  # the custom resource: one per node, one benchmark at a time
LOCAL = ("", "local")  # --ray alone or --ray local: an in-process cluster
# Environment the driver passes to the nodes' Ray workers: TensorFlow flags the run records,
# and the testing aid that injects faults (bench.engine.worker). CUDA_VISIBLE_DEVICES is Ray's
# to set.
FORWARDED_ENV = tuple(k for k in ENV_FLAGS if k != "CUDA_VISIBLE_DEVICES") + (
    "BENCH_INJECT_FAULT",)
LOCAL_OBJECT_STORE_BYTES = 100 * 1024 * 1024  # records are small; Ray's default is 30% of RAM
INSTALL_HINT = "pip install -e '.[cpu,ray]'"


@dataclass
class ClusterResult:
    """What a cluster run left: one run file per node that measured something."""

    paths: list[Path] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    complete: bool = True

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.status in FAILED_STATUSES]


def require_ray() -> None:
    """One readable UsageError (exit 2) when Ray is not installed, before any work."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError(f"--ray needs Ray, an optional extra: {INSTALL_HINT}") from None


def connect(address: str) -> None:
    """Join the cluster at `address` ('auto': the one this machine belongs to), or start a
    local one with a single slot. Our SIGINT/SIGTERM/SIGHUP handlers survive ray.init."""
    import ray

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    common = dict(log_to_driver=False, configure_logging=False,
                  runtime_env={"env_vars": env} if env else None)
    try:
        if address in LOCAL:
            # address="local": a new cluster even when RAY_ADDRESS names a running one
            ray.init(address="local", num_cpus=os.cpu_count() or 1, resources={SLOT: 1},
                     include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                     **common)
        else:
            _reachable(address)
            ray.init(address=address, **common)
    except ConnectionError as exc:
        raise UsageError(f"--ray {address}: cannot connect to a Ray cluster ({exc})") from None
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    slots = ray.cluster_resources().get(SLOT, 0)
    if slots < 1:
        ray.shutdown()
        raise UsageError(f"--ray {address}: the cluster offers no '{SLOT}' resource; start "
                         f"each node with ray start ... --resources='{{\"{SLOT}\": 1}}'")


def _reachable(address: str) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself retries for minutes)."""
    host, colon, port = address.rpartition(":")
    if not colon or "://" in address or not port.isdigit():
        return  # 'auto' and ray:// addresses: Ray's own message is quick and clear
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}"
                         "); start one with ray start --head, or give its address") from None


@dataclass
class _Group:
    """A submitted group: its job, its task's generator, where it runs and how far it got."""

    job: GroupJob
    node: NodeInfo | None = None
    done: int = 0  # records received of job.cells (remeasures come after)
    attempts: int = 1


class _Files:
    """One run file per node, claimed when the node's first result arrives."""

    def __init__(self, out_dir: Path, stem: str, run_id: str, suite: str, options: dict):
        self.out_dir, self.stem, self.run_id = out_dir, stem, run_id
        self.suite, self.options = suite, options
        self.writers: dict[str, RunWriter] = {}
        self.paths: list[Path] = []

    def run_id_of(self, node: NodeInfo) -> str:
        return f"{self.run_id}-{node.tag}"

    def append(self, node: NodeInfo, record: Record) -> None:
        writer = self.writers.get(node.node_id)
        if writer is None:
            path = claim_run_file(self.out_dir, f"{self.stem}-{node.tag}")
            self.paths.append(path)
            header = RunHeader(run_id=self.run_id_of(node), suite=self.suite, started=_now(),
                               machine=node.machine,
                               options={**self.options, "ray_node": node.tag,
                                        "ray_run_id": self.run_id},
                               peak_flops=node.peak_flops)
            writer = self.writers[node.node_id] = RunWriter(path, header)
        record.run_id = self.run_id_of(node)
        writer.append(record)

    def close(self, complete: bool, reason: str = "") -> None:
        for writer in self.writers.values():
            writer.close(complete=complete, reason=reason, finished=_now())


def run_on_cluster(cells_in_order: list[tuple[int, Cell]], *, address: str, suite: str,
                   out_dir: Path, stem: str, options, timeout_s: float,
                   memory_limit_mb: float | None = None, settings: dict | None = None,
                   show_progress: bool = True, probe: set[tuple[int, Cell]] | None = None,
                   threads_inter: int = 0, remeasure: int = 0,
                   slowdown: dict | None = None) -> ClusterResult:
    """Measure every (round, cell) on the cluster, one group per slot; see the module doc.

    An interruption (KeyboardInterrupt, bench.engine.signals) is re-raised after the outstanding
    tasks are cancelled and every file is closed incomplete, with `run_paths` set on it.
    """
    import ray

    try:
        connect(address)
        return _drive(ray, cells_in_order, address=address, suite=suite, out_dir=out_dir,
                      stem=stem, options=options, timeout_s=timeout_s,
                      memory_limit_mb=memory_limit_mb, settings=settings,
                      show_progress=show_progress, probe=probe or set(),
                      threads_inter=threads_inter, remeasure=remeasure, slowdown=slowdown)
    except KeyboardInterrupt as exc:
        if not hasattr(exc, "run_paths"):  # stopped while connecting: nothing was written
            exc.run_paths = []
        raise
    finally:
        ray.shutdown()  # a local cluster stops here; a remote one is only left


def _drive(ray, cells_in_order, *, address, suite, out_dir, stem, options, timeout_s,
           memory_limit_mb, settings, show_progress, probe, threads_inter, remeasure,
           slowdown) -> ClusterResult:
    run_id = new_run_id()
    cells = list(dict.fromkeys(cell for _, cell in cells_in_order))
    profiles = (sorted({(cell.device, cell.threads) for cell in cells})
                or [(Device.CPU, ALL_THREADS)])
    rounds = 1 + max((r for r, _ in cells_in_order), default=0)
    log_dir = (out_dir / f"{stem}_logs").resolve()
    groups: dict[str, list[tuple[int, Cell]]] = {}
    for round_index, cell in cells_in_order:
        groups.setdefault(cell.group_key, []).append((round_index, cell))
    files = _Files(out_dir, stem, run_id, suite,
                   {**(settings or {}), **asdict(options), "timeout_s": timeout_s,
                    "memory_limit_mb": memory_limit_mb, "ray_address": address or "local"})
    result = ClusterResult(files.paths)
    progress = Progress(len(cells_in_order), enabled=show_progress)

    remote_group = ray.remote(run_group)

    def submit(group: _Group):
        gpu = any(cell.device == Device.GPU for _, cell in group.job.cells)
        task = remote_group.options(num_cpus=0, num_gpus=1 if gpu else 0, resources={SLOT: 1},
                                    max_retries=0, name=f"bench:{group.job.group}")
        return task.remote(group.job)

    pending = {}
    for key, members in groups.items():
        job = GroupJob(run_id=run_id, group=key, cells=members,
                       probe={rc for rc in members if rc in probe}, options=options,
                       profiles=profiles, log_dir=str(log_dir), timeout_s=timeout_s,
                       memory_limit_mb=memory_limit_mb, threads_inter=threads_inter,
                       slowdown=slowdown, remeasure=remeasure, rounds=rounds,
                       omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
        group = _Group(job)
        pending[submit(group)] = group

    def record(group: _Group, item: Record) -> None:
        files.append(group.node, item)
        result.records.append(item)
        if item.extra_visit:
            progress.total += 1
        else:
            group.done += 1
        progress.done(item, group.node.tag)

    seen: list[int] = []
    try:
        with _noting_signals(seen):
            _collect(ray, pending, submit, record)
    except KeyboardInterrupt as caught:  # Ctrl-C, or SIGTERM/SIGHUP via bench.engine.signals
        exc = caught
        if seen and not isinstance(caught, signals.Interrupted):
            exc = signals.Interrupted(seen[0])
        for generator in pending:
            _cancel(ray, generator)
        result.complete = False
        files.close(complete=False, reason=signals.reason(exc))
        progress.finish(interrupted=True)
        exc.run_paths = list(files.paths)
        if exc is caught:
            raise
        raise exc from None
    except BaseException:
        for generator in pending:
            _cancel(ray, generator)
        files.close(complete=False, reason="the cluster run failed")
        raise
    files.close(complete=True)
    progress.finish()
    return result


def _collect(ray, pending: dict, submit, record) -> None:
    """Take each group's items as they arrive until every task is done; `pending` (generator
    -> group) shrinks as tasks end, so the caller can cancel what is left."""
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for generator in ready:
            group = pending[generator]
            try:
                item = ray.get(next(generator))
            except StopIteration:
                del pending[generator]
                continue
            except ray.exceptions.RayError as exc:
                del pending[generator]
                retry = _lost(group, exc, record)
                if retry is not None:
                    pending[submit(retry)] = retry
                continue
            if isinstance(item, NodeInfo):
                group.node = item
            else:
                record(group, item)


def _lost(group: _Group, exc: Exception, record) -> _Group | None:
    """A group's task died (node lost, worker killed, task error): record the cell it was on
    as crashed, and return the rest of the group to submit again (None when nothing is left).

    A task that died before it said where it ran is tried once more; a second such failure
    (e.g. calibration fails on every node) ends the run, as a failed calibration does locally,
    and a usage error raised on the node (a GPU group where TensorFlow sees no GPU) ends it
    at once with that message (exit 2).
    """
    if isinstance(getattr(exc, "cause", None), UsageError):  # e.g. a GPU group, no GPU
        raise UsageError(str(exc.cause)) from None
    cause = " ".join(str(exc).split())[:300] or type(exc).__name__
    if group.node is None:
        if group.attempts >= 2:
            raise RuntimeError(f"group {group.job.group} could not start on the cluster: "
                               f"{type(exc).__name__}: {cause}")
        return replace(group, attempts=group.attempts + 1)
    left = group.job.cells[group.done:]
    if left:
        round_index, cell = left[0]
        record(group, Record(cell=cell, status=Status.CRASHED, round=round_index,
                             reason=f"crashed: node lost ({type(exc).__name__}: {cause})",
                             node=group.node.tag))
    if len(left) <= 1:
        return None
    return _Group(replace(group.job, cells=left[1:]), attempts=group.attempts + 1)


@contextlib.contextmanager
def _noting_signals(seen: list[int]) -> Iterator[None]:
    """Note SIGTERM/SIGHUP as they arrive, then run the handler in place (bench.engine.signals).

    A signal that arrives inside a blocking Ray call (ray.wait, ray.get) runs the handler
    there, but Ray swallows the handler's `Interrupted` and raises a bare KeyboardInterrupt;
    the note lets the driver report the real signal (exit 143 for SIGTERM, not 130).
    """
    previous = {s: signal.getsignal(s) for s in signals.HANDLED}

    def note(signum, frame):
        seen.append(signum)
        previous[signum](signum, frame)

    for signum, handler in previous.items():
        if callable(handler):
            signal.signal(signum, note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is note:
                signal.signal(signum, handler)


def _cancel(ray, generator) -> None:
    """Cancel a group's task and kill its Ray worker (its cell worker dies with it)."""
    with contextlib.suppress(Exception):  # already finished, or the cluster is gone
        ray.cancel(generator, force=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
