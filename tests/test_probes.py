"""Debuggability probes: each test breaks if a probe stops measuring what it claims to.

The first tests are plain Python (message reading, the scorecard, the command's validation).
The rest run real modes on tiny networks in this process (TensorFlow imported once) and check
the facts that make the modes differ: eager code runs Python every step and traced code does
not; a session graph names every layer and the optimised graph folds batch norm and loses the
names; XLA cannot run TensorFlow's numeric checking; Keras errors name the layer, not the line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import UsageError
from bench.probes import KEYS
from bench.probes.messages import names_layer, names_source, reported_op, short_error
from bench.probes.scorecard import format_scorecard
from bench.store.record import Cell, Record

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
CNN = "cnn:input_size=16,conv_filters=4/8,fc_units=16"
MOBILENET = "mobilenet:alpha=0.25,resolution=32,classes=10"
CNN_LAYERS = ["conv1", "pool1", "conv2", "pool2", "fc1", "logits"]

# --------------------------------------------------------------------------- plain Python


def test_names_source_reads_every_shape_tensorflow_uses():
    path = "/work/main/cases/cnn.py"
    assert names_source('  File "/work/main/cases/cnn.py", line 135, in _forward', path, 135)
    assert names_source('File "work/main/cases/cnn.py", line 135, in x', path, 135)  # XLA
    assert names_source("    + /work/main/cases/cnn.py (L135) _forward", path, 135)
    assert names_source("    + ...main/cases/cnn.py (L135) _forward", path, 135)  # shortened
    assert not names_source('File "/work/main/cases/cnn.py", line 134', path, 135)
    assert not names_source('File "/elsewhere/other_cnn.py", line 135', path, 135)
    assert not names_source("    + ...py (L135) x", path, 135)  # too short to be the file


def test_names_layer_matches_whole_names_and_scope_suffixes():
    assert names_layer("{{node cnn_1/pool2_1/add}}", ["pool2"])
    assert names_layer("node mobilenet_v1_1/block7__pointwise_1/Log", ["block7__pointwise"])
    assert not names_layer("conv10/Relu and conv1__bn_1/add", ["conv1"])
    assert not names_layer("{{node add}} = AddV2", ["pool2"])


def test_reported_op_and_short_error():
    assert reported_op('Detected Infinity or NaN in output 0 of graph op "Log" (# of') == "Log"
    assert reported_op("no op here") is None
    text = short_error(ValueError("compile graph __inference_infer_306 failed\nmore"))
    assert text == "ValueError: compile graph __inference_infer_N failed"


def _record(mode: str, status: str = "ok", **debug) -> Record:
    return Record(cell=Cell("cnn", "input_size=16", mode, "infer", batch=2), status=status,
                  reason="not applicable: inference only" if status == "skipped" else "",
                  debug=debug)


def test_scorecard_has_modes_as_columns_and_probes_as_rows():
    records = [
        _record("keras", dbg_python_calls_per_step=0, dbg_intermediates_missing=[]),
        _record("eager", dbg_python_calls_per_step=10, dbg_intermediates_fraction=1.0,
                dbg_nan_localised=True, dbg_cold_start_s=0.0123),
        _record("optimized", dbg_python_calls_per_step=0, dbg_intermediates_fraction=1 / 6,
                dbg_intermediates_missing=["conv1", "pool1"], dbg_nan_localised=False),
        _record("frozen", status="skipped"),
    ]
    text = format_scorecard(records)
    lines = text.splitlines()
    assert lines[1].split() == ["probe", "frozen", "optimized", "eager", "keras"]  # MODES order
    row = {line.split("  ")[0].strip(): line.split() for line in lines[3:] if line.strip()}
    assert row["python calls per step"][-4:] == ["-", "0", "10", "0"]
    assert row["nan localised"][-4:] == ["-", "no", "yes", "-"]
    assert row["status"][-4:] == ["n/a", "ok", "ok", "ok"]
    assert "17%" in row["intermediates fraction"] and "100%" in row["intermediates fraction"]
    assert "optimized: intermediates missing: conv1, pool1" in text
    assert "0.012" in row["cold start (s)"]
    markdown = format_scorecard(records, "markdown")
    assert "| probe | frozen | optimized | eager | keras |" in markdown


def test_debug_command_validates_before_running():
    from bench.commands.debug import plan_cells

    with pytest.raises(UsageError, match="unknown mode 'jit'"):
        plan_cells([CNN], ["jit"], "infer", 2)
    with pytest.raises(UsageError, match="unknown case"):
        plan_cells(["resnet"], None, "infer", 2)
    with pytest.raises(UsageError, match="batch"):
        plan_cells([CNN], None, "infer", 0)
    cells = plan_cells(None, ["xla", "eager"], "train", 3)  # default cases, canonical order
    assert {c.case for c in cells} == {"cnn", "mobilenet"}
    assert [c.mode for c in cells[:2]] == ["eager", "xla"] and cells[0].batch == 3
    # function_epoch takes only dataset input: left out by default, an error when named.
    assert "function_epoch" not in {c.mode for c in plan_cells([CNN], None, "infer", 2)}
    with pytest.raises(UsageError, match="'function_epoch' cannot take input resident"):
        plan_cells([CNN], ["function_epoch"], "infer", 2)
    dataset = plan_cells([CNN], None, "infer", 2, "dataset")
    assert "function_epoch" in {c.mode for c in dataset} and {c.input for c in dataset} == {
        "dataset"}


def test_command_and_scorecard_do_not_import_tensorflow():
    code = ("import sys, bench.cli as c; c.build_parser(); import bench.probes.scorecard; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_the_probes_write_exactly_the_keys_of_the_probe_table():
    from bench.probes.core import PROBES

    written = [key for _, keys in PROBES for key in keys]
    assert len(written) == len(set(written)) and set(written) == set(KEYS)


# --------------------------------------------------------------------------- real modes


@pytest.fixture(scope="module")
def probe():
    """Probe results of (case, mode, phase), each measured once for the module."""
    from bench.probes.core import probe_record

    cache: dict[tuple, dict] = {}

    def get(spec: str, mode: str, phase: str = "infer") -> dict:
        if (spec, mode, phase) not in cache:
            case, _, config = spec.partition(":")
            record = probe_record(Cell(case, config, mode, phase, batch=2))
            assert record.status == "ok", record.reason
            assert "dbg_probe_errors" not in record.debug, record.debug["dbg_probe_errors"]
            cache[spec, mode, phase] = record.debug
        return cache[spec, mode, phase]

    return get


def test_eager_runs_model_python_every_step_and_every_layer_is_readable(probe):
    d = probe(CNN, "eager")
    assert set(d) == set(KEYS)
    # forward, _forward, two dense helpers and the tap hook once per named layer
    assert d["dbg_python_calls_per_step"] >= len(CNN_LAYERS)
    assert d["dbg_intermediates_fraction"] == 1.0 and d["dbg_intermediates_via"] == "debugger hook"
    assert d["dbg_shape_error_stage"] == "step" and d["dbg_shape_error_names_source"]
    assert d["dbg_nan_check"] == "enable_check_numerics" and d["dbg_nan_localised"]
    assert d["dbg_nan_error_names_source"]
    assert d["dbg_traces_to_first_result"] == 0 and d["dbg_retraces_new_batch"] == 0
    assert d["dbg_new_batch_accepted"] and d["dbg_graph_nodes"] is None


def test_function_runs_no_python_exposes_only_outputs_and_retraces_per_shape(probe):
    d = probe(CNN, "function")
    assert d["dbg_python_calls_per_step"] == 0
    assert d["dbg_intermediates_missing"] == CNN_LAYERS[:-1]  # only the returned logits
    assert d["dbg_intermediates_via"] == "step output"
    assert d["dbg_shape_error_stage"] == "build" and d["dbg_shape_error_names_source"]
    assert d["dbg_nan_localised"] and d["dbg_nan_error_names_source"]
    assert d["dbg_traces_to_first_result"] == 1 and d["dbg_retraces_new_batch"] == 1
    assert d["dbg_graph_nodes"] == d["dbg_graph_nodes_built"] > 0
    assert d["dbg_layer_ops_surviving"] == 0  # the traced graph's ops are unnamed


def test_session_graph_names_every_layer_but_needs_a_rebuild_for_a_new_batch(probe):
    d = probe(CNN, "session")
    assert d["dbg_python_calls_per_step"] == 0
    assert d["dbg_intermediates_fraction"] == 1.0 and d["dbg_intermediates_via"] == "fetch by name"
    assert d["dbg_layer_ops_surviving"] == len(CNN_LAYERS)
    assert not d["dbg_new_batch_accepted"] and d["dbg_retraces_new_batch"] == 1
    assert d["dbg_nan_localised"] and d["dbg_nan_error_names_source"]


def test_optimized_graph_folds_batch_norm_and_loses_the_layer_names(probe):
    d = probe(MOBILENET, "optimized")
    assert d["dbg_batch_norm_folded"] is True
    assert "FusedBatchNormV3" in d["dbg_fused_op_types"]
    assert any(t.startswith("_Fused") for t in d["dbg_new_op_types"])
    assert d["dbg_graph_nodes"] < d["dbg_graph_nodes_built"] / 5
    assert d["dbg_layer_ops_surviving"] == 0
    assert d["dbg_intermediates_missing"][:2] == ["conv1", "block1/depthwise"]
    assert d["dbg_intermediates_fraction"] < 0.1  # the logits alone
    # the check ops enable_check_numerics adds at build time survive freezing and optimising
    assert d["dbg_nan_localised"]


def test_xla_cannot_run_tensorflow_numeric_checking(probe):
    d = probe(CNN, "xla")
    assert d["dbg_nan_check"] == "none" and not d["dbg_nan_detected"]
    assert d["dbg_nan_check_failure"].startswith("InvalidArgumentError")
    assert not d["dbg_nan_localised"] and not d["dbg_nan_error_names_source"]
    assert any(t.startswith("fusion") for t in d["dbg_new_op_types"])
    assert d["dbg_python_calls_per_step"] == 0 and d["dbg_retraces_new_batch"] == 1


def test_keras_reads_layers_through_submodels_and_errors_name_the_layer_not_the_line(probe):
    d = probe(MOBILENET, "keras")  # a functional model: layers[0] is its InputLayer
    assert d["dbg_python_calls_per_step"] == 0
    assert d["dbg_intermediates_fraction"] == 1.0
    assert d["dbg_intermediates_via"] == "keras sub-model"
    assert d["dbg_shape_error_names_layer"] and not d["dbg_shape_error_names_source"]
    assert d["dbg_nan_localised"] and d["dbg_nan_error_names_layer"]
    assert d["dbg_layer_ops_surviving"] == 28  # all but `pool`: Keras names it itself
    assert d["dbg_traces_to_first_result"] == 1 and d["dbg_retraces_new_batch"] == 1


def test_probes_are_deterministic(probe):
    from bench.probes.core import probe_record

    first = probe(CNN, "function")
    again = probe_record(Cell("cnn", CNN.partition(":")[2], "function", "infer", batch=2)).debug
    facts = [k for k in KEYS if not k.endswith("_s")]
    assert {k: again[k] for k in facts} == {k: first[k] for k in facts}


def test_worker_records_probes_when_asked():
    from bench.engine.worker import CellOptions, run_cell

    cell = Cell("cnn", CNN.partition(":")[2], "eager", "infer", batch=2)
    record = run_cell(cell, CellOptions(warmup=1, min_samples=3, budget_s=0.05, probes=True))
    assert record.status == "ok" and record.equivalent
    assert record.debug["dbg_python_calls_per_step"] > 0 and set(KEYS) <= set(record.debug)


def test_debug_command_prints_the_scorecard_and_writes_a_run(tmp_path):
    from bench.store.runfiles import load_run

    out = subprocess.run(
        [sys.executable, "-m", "bench", "debug", "--case", CNN, "--mode", "eager,frozen",
         "--phase", "train", "--format", "markdown", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr
    assert "| probe | frozen | eager |" in out.stdout
    assert "| status | n/a | ok |" in out.stdout  # frozen graphs cannot train
    run = load_run(next(tmp_path.glob("debug-*.jsonl")))
    eager = next(r for r in run.records if r.cell.mode == "eager")
    assert eager.status == "ok" and not eager.samples_s
    assert eager.debug["dbg_python_calls_per_step"] > 0


@pytest.mark.parametrize(("mode", "in_python"), [
    ("eager", True), ("function", True), ("function_epoch", False), ("session", False),
    ("keras", False)])
def test_dataset_input_says_whether_the_batch_passes_through_the_users_loop(mode, in_python):
    """A Python for over the dataset holds each batch; an in-graph iterator or fit does not."""
    from bench.probes.core import probe_record

    case, _, config = CNN.partition(":")
    record = probe_record(Cell(case, config, mode, "infer", input="dataset", batch=2))
    assert record.status == "ok", record.reason
    assert "dbg_probe_errors" not in record.debug, record.debug["dbg_probe_errors"]
    assert record.debug["dbg_batch_in_python"] is in_python
    if mode == "function_epoch":  # a new batch size retraces the epoch function once
        assert record.debug["dbg_new_batch_accepted"] and \
            record.debug["dbg_retraces_new_batch"] == 1


def test_single_batch_inputs_leave_the_pipeline_probe_empty(probe):
    assert probe(CNN, "eager")["dbg_batch_in_python"] is None
