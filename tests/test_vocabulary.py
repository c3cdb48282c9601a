"""No mode, status or setup-stage name is spelled out as a string literal outside its registry.

The registries: bench/modes/__init__.py (MODE_TABLE, REFERENCE_MODE) and
bench/record.py (Status, SetupStage, TIME_STAGES). Product code (bench/, reports/, cases/)
reads them; tests may spell names out (they are the examples).

What counts: every `str` constant in the syntax tree that equals a name exactly. Docstrings and
comments are not flagged (they explain; they do not decide anything), nor are longer strings
that merely contain a name (messages, f-string text). Literals that are a name by coincidence
are allowed below, each with its reason; keep the list short.
"""

import ast
from pathlib import Path

from bench.modes import MODE_TABLE
from bench.record import SETUP_STAGES, STATUSES

ROOT = Path(__file__).resolve().parents[1]
REGISTRIES = {"bench/modes/__init__.py", "bench/record.py"}

# (file, literal): not a mode/status/stage there, but another thing with the same spelling.
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
}
# Files being edited on another branch at the time of writing (issue 11, reports/ and the
# estimate); their literals are to be replaced by the registry names after that merge.
PENDING: set[str] = set()


def vocabulary() -> dict[str, str]:
    return {**{m: "mode" for m in MODE_TABLE}, **{str(s): "status" for s in STATUSES},
            **{str(s): "setup stage" for s in SETUP_STAGES}}


def spelled_names(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    words = vocabulary()
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings and node.value in words)


def test_the_scanner_sees_literals_but_not_docstrings():
    source = '"""eager."""\nx = "eager"\ny = f"{x} eager"\nz = ("ok", "build", "eagerly")\n'
    assert spelled_names(source) == [(2, "eager"), (4, "build"), (4, "ok")]


def test_no_vocabulary_literal_outside_its_registry():
    found = []
    for folder in ("bench", "reports", "cases"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in REGISTRIES or rel in PENDING:
                continue
            for line, word in spelled_names(path.read_text()):
                if (rel, word) not in ALLOWED:
                    found.append(f"{rel}:{line}: {word!r} ({vocabulary()[word]})")
    assert not found, "use the registry names (bench.modes, bench.record):\n" + "\n".join(found)


def test_the_allowlists_are_not_stale():
    for rel, word in ALLOWED:
        assert word in {w for _, w in spelled_names((ROOT / rel).read_text())}, (rel, word)
    for rel in PENDING:
        assert (ROOT / rel).exists(), rel
