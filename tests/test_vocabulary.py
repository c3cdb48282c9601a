"""No vocabulary word is spelled out as a string literal outside its registry.

The vocabularies and their registries: modes (bench/modes/__init__.py: MODE_TABLE); statuses,
setup stages, phases, devices, input styles and time stages (bench/store/record.py); probe policies
(bench/engine/plan.py); comparison verdicts (reports/compare.py); A/B verdicts (bench/stats/ab.py).
Each is a StrEnum (modes: the table's keys) whose members are their own names as strings, so
product code (bench/, reports/, cases/) reads the members and run files keep plain strings;
tests may spell names out (they are the examples). A registry file is exempt only for the
vocabularies it defines: `"train"` in reports/compare.py is still flagged.

What counts: every `str` constant in the syntax tree that equals a name exactly. Docstrings,
comments and the text of f-strings are not flagged (they explain; they do not decide
anything), nor are longer strings that merely contain a name (messages). Literals that are a
name by coincidence are allowed below, each with its reason; keep the list short.
"""

import ast
from pathlib import Path

from bench.engine.plan import PROBE_POLICIES
from bench.modes import MODE_TABLE
from bench.stats.ab import Verdict
from bench.store.record import DEVICES, INPUT_STYLES, PHASES, SETUP_STAGES, STATUSES, TIME_STAGES
from reports.compare import CompareVerdict

ROOT = Path(__file__).resolve().parents[1]
# Each vocabulary: (what one word is called, its words).
VOCABULARIES = {
    "mode": tuple(MODE_TABLE),
    "status": STATUSES,
    "setup stage": SETUP_STAGES,
    "phase": PHASES,
    "device": DEVICES,
    "input style": INPUT_STYLES,
    "time stage": TIME_STAGES,
    "probe policy": PROBE_POLICIES,
    "comparison verdict": tuple(CompareVerdict),
    "A/B verdict": tuple(Verdict),
}
# Registry file -> the vocabularies it defines (and may spell out).
REGISTRIES = {
    "bench/modes/__init__.py": {"mode"},
    "bench/store/record.py": {"status", "setup stage", "phase", "device", "input style",
                              "time stage"},
    "bench/engine/plan.py": {"probe policy"},
    "reports/compare.py": {"comparison verdict"},
    "bench/stats/ab.py": {"A/B verdict"},
}

# (file, literal): not a vocabulary word there, but another thing with the same spelling.
ALLOWED = {
    # Prepared.graph_nodes keys: the graph's node count after each transformation.
    **dict.fromkeys([("bench/modes/frozen.py", "frozen"),
                     ("bench/modes/optimized.py", "optimized"), ("reports/table.py", "frozen"),
                     ("bench/modes/model_graph.py", "frozen"),
                     ("reports/table.py", "optimized")], "a graph_nodes key"),
    ("bench/conftest.py", "session"): "pytest fixture scope",
    ("bench/test_benchmarks.py", "session"): "pytest fixture scope",
    ("bench/modes/runtime.py", "keras"): "the keras package's version fact",
    ("cases/model.py", "keras"): "the model-file kind of keras:PATH",
    ("bench/test_benchmarks.py", "keras"): "the keras package in sys.modules",
    # argparse defaults are user-facing command-line text (the help says why that mode).
    ("bench/commands/overhead.py", "frozen"): "argparse default of --mode",
    ("reports/time_spent.py", "error"): "a column: the estimate's relative error",
    # Settings fields and suite axis keys: a time stage is named after the setting whose time it
    # is (warmup, paired, probes) and the inputs stage after the inputs axis, but a field name
    # is not a stage.
    **dict.fromkeys([("bench/engine/plan.py", "warmup"), ("bench/engine/plan.py", "paired"),
                     ("bench/engine/plan.py", "probes"), ("bench/engine/plan.py", "inputs"),
                     ("bench/commands/matrix.py", "warmup"), ("bench/commands/matrix.py", "paired"),
                     ("bench/commands/matrix.py", "probes"), ("bench/commands/matrix.py", "inputs"),
                     ("bench/ab/driver.py", "warmup"), ("bench/engine/worker.py", "probes"),
                     ("bench/test_benchmarks.py", "probes"),
                     ("bench/store/pytest_benchmark_json.py", "probes")],
                    "a Settings field or axis key"),
    ("bench/engine/eta.py", "probes"): "a part of the time estimate (and its eta_prior.json key)",
    **dict.fromkeys([("bench/engine/runner.py", "start"), ("bench/cluster/node.py", "start")],
                    "when the peak FLOP/s is calibrated: at the run's start"),
    ("reports/speedup.py", "paired"): "speedup_source: the paired measurement",
    ("reports/speedup.py", "reference"): "speedup_source: eager itself",
    **dict.fromkeys([("reports/pivots.py", "reference"), ("reports/report.py", "reference")],
                    "the break-even verdict of eager itself"),
    ("reports/report.py", "same"): "A/B exact facts: none differed",
    ("reports/ab.py", "missing"): "the A/B status of a cell a side lacks",
    ("bench/store/record.py", "all"): "ALL_THREADS, the threads value",
    ("bench/probes/graphs.py", "all"): "the XLA dump's key for all computations",
    **dict.fromkeys([("bench/store/pytest_benchmark_json.py", "cpu"), ("reports/table.py", "cpu")],
                    "a machine-facts key (pytest-benchmark's machine_info, bench.engine.machine)"),
    ("cases/mobilenet.py", "same"): "Keras padding",
    ("cases/keras_model.py", "inputs"): "the Keras model attribute",
}
# Words allowed in every file: "none" is English for nothing (probe facts, the cnn's
# pool = "none", matplotlib's fmt, report text). ProbePolicy.NONE is compared only in its
# registry (bench.engine.plan.probe_selection) and offered through the enum (`run --probes`).
ALLOWED_EVERYWHERE = {"none"}
# Files being edited on another branch at the time of writing (issue 11, reports/ and the
# estimate); their literals are to be replaced by the registry names after that merge.
PENDING: set[str] = set()


def vocabulary() -> dict[str, set[str]]:
    """Word -> the vocabularies it belongs to ("infer" is a phase and a probe policy)."""
    words: dict[str, set[str]] = {}
    for kind, names in VOCABULARIES.items():
        for name in names:
            words.setdefault(str(name), set()).add(kind)
    return words


def spelled_names(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    text = {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    text |= {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for part in node.values if isinstance(part, ast.Constant)}
    words = vocabulary()
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in text and node.value in words)


def unregistered(rel: str, source: str) -> list[str]:
    """The literals of one product file that are neither its registry's nor allowed."""
    if rel in PENDING:
        return []
    found = []
    for line, word in spelled_names(source):
        kinds = vocabulary()[word]
        if (kinds & REGISTRIES.get(rel, set()) or (rel, word) in ALLOWED
                or word in ALLOWED_EVERYWHERE):
            continue
        found.append(f"{rel}:{line}: {word!r} ({', '.join(sorted(kinds))})")
    return found


def product_files() -> list[Path]:
    return [path for folder in ("bench", "reports", "cases")
            for path in sorted((ROOT / folder).rglob("*.py"))]


def test_the_scanner_sees_literals_but_not_docstrings():
    source = ('"""eager."""\nx = "eager"\ny = f"{x} eager"\nz = ("ok", "build", "eagerly")\n'
              'w = f"cpu{x}"\n')
    assert spelled_names(source) == [(2, "eager"), (4, "build"), (4, "ok")]


def test_a_planted_literal_fails_the_check():
    """Each vocabulary's word planted in a real product file is found, also in a registry of
    another vocabulary; the same word in its own registry is not."""
    worker = (ROOT / "bench/engine/worker.py").read_text()
    last = len(worker.splitlines())
    for word in ("train", "dataset", "gpu", "once", "sampling", "regression", "slower",
                 "skipped", "eager", "first_call"):
        planted = worker + f"\nif cell.phase == {word!r}:\n    pass\n"
        assert unregistered("bench/engine/worker.py", planted) == [
            f"bench/engine/worker.py:{last + 2}: {word!r} "
            f"({', '.join(sorted(vocabulary()[word]))})"]
    compare = (ROOT / "reports/compare.py").read_text()
    assert unregistered("reports/compare.py", compare + '\nphase = "train"\n')
    assert not unregistered("reports/compare.py", compare + '\nverdict = "same"\n')


def test_no_vocabulary_literal_outside_its_registry():
    found = [line for path in product_files()
             for line in unregistered(path.relative_to(ROOT).as_posix(), path.read_text())]
    assert not found, ("use the registry names (bench.modes, bench.store.record, "
                       "bench.engine.plan, "
                       "reports.compare, bench.stats.ab):\n" + "\n".join(found))


def test_the_allowlists_are_not_stale():
    for rel, word in ALLOWED:
        assert word in {w for _, w in spelled_names((ROOT / rel).read_text())}, (rel, word)
    assert set(vocabulary()) >= ALLOWED_EVERYWHERE
    for rel in [*PENDING, *REGISTRIES]:
        assert (ROOT / rel).exists(), rel
