"""Bring your own model: a Keras file, a SavedModel with two named inputs, a module case and an
entry-point case through every mode that applies, equivalent to their reference; the reasons
recorded where a mode does not apply; bad models as one line and exit 2.

Every model is made at test time and tiny (batch 2), so each mode builds in well under a second.
"""

import dataclasses
import sys

import numpy as np
import pytest
from usermodels import keras_file, two_input_saved_model

from bench.engine.lifecycle import make_request, prepare_cell
from bench.modes import MODE_TABLE, load_mode, tolerance
from bench.modes.base import NotApplicable, Threads
from bench.store.record import Cell, Status
from cases import get_workload

tf = pytest.importorskip("tensorflow")

MODULE_CASE = "module:examples.tiny_mlp:case:hidden=8"
EPOCH = 2


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    return {
        "keras": f"keras:{keras_file(directory)}",
        "keras2": f"keras:{keras_file(directory, 'two_heads.keras', loss=None, outputs=2)}",
        "savedmodel": f"savedmodel:{two_input_saved_model(directory)}",
    }


def _request(spec, mode, phase, input_style="resident", batch=2):
    workload = get_workload(spec)
    cell = Cell(workload.case, workload.config_string, mode, phase, input=input_style,
                batch=batch)
    return make_request(cell, 0, Threads(2, 2), epoch_batches=EPOCH)


def _run(spec, mode, phase, input_style="resident"):
    """(outputs of the equivalence steps, trained weights) through lifecycle.prepare_cell,
    as the worker runs a cell, or the NotApplicable reason."""
    request = _request(spec, mode, phase, input_style)
    ready = prepare_cell(load_mode(mode), request)
    ready.close()
    return ready.outputs, ready.trained


def _reference(spec, phase, input_style="resident"):
    """The worker's reference: a fresh eager instance of the same request."""
    from bench.modes.base import equivalence_calls

    request = _request(spec, "eager", phase, input_style)
    reference = load_mode("eager").prepare(request)
    calls = equivalence_calls(input_style, phase) if phase == "train" else 1
    outputs = [np.asarray(reference.step()) for _ in range(calls)]
    weights = reference.read_weights() if phase == "train" else None
    reference.close()
    return outputs, weights


def _modes(phase, input_style="resident"):
    return [m for m, info in MODE_TABLE.items()
            if phase in info.phases and input_style in info.inputs]


def _assert_trained_like_reference(spec, mode, input_style="resident"):
    outputs, trained = _run(spec, mode, "train", input_style)
    ref_outputs, ref_weights = _reference(spec, "train", input_style)
    tol = tolerance(mode, "train")
    assert max(abs(float(a) - float(b)) for a, b in zip(outputs, ref_outputs, strict=True)) <= tol
    assert set(trained) == set(ref_weights)
    for name in ref_weights:
        assert np.max(np.abs(trained[name] - ref_weights[name])) <= tol, (mode, name)
    return trained


# --- module: and entry-point cases: every mode the built-in cases get ------------------------

@pytest.mark.parametrize("mode", _modes("infer", "feed"))
def test_a_module_case_runs_every_inference_mode_like_a_builtin_case(mode):
    outputs, _ = _run(MODULE_CASE, mode, "infer", "feed")
    reference, _ = _reference(MODULE_CASE, "infer")
    assert outputs[0].shape == (2, 4)
    assert np.max(np.abs(outputs[0] - reference[0])) <= tolerance(mode, "infer")


@pytest.mark.parametrize("mode", [m for m in _modes("train", "feed") if m != "eager"])
def test_a_module_case_trains_in_every_training_mode_session_included(mode):
    trained = _assert_trained_like_reference(MODULE_CASE, mode, "feed")
    initial = get_workload(MODULE_CASE).weights(0)
    assert all(not np.array_equal(trained[n], initial[n]) for n in initial)


def test_a_module_case_keeps_its_name_and_keys_in_the_cell():
    workload = get_workload(MODULE_CASE)
    assert workload.case == "module:examples.tiny_mlp:case"
    assert workload.spec == MODULE_CASE
    assert get_workload(Cell(workload.case, workload.config_string, "eager",
                             "infer").case_spec).spec == MODULE_CASE


@pytest.fixture
def entry_point(tmp_path, monkeypatch):
    """An installed distribution registering `tiny` in the tf_graph_bench.cases group."""
    dist = tmp_path / "tiny_cases-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-cases\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[tf_graph_bench.cases]\ntiny = examples.tiny_mlp:case\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tiny"


def test_an_entry_point_case_is_named_like_a_builtin_and_runs(entry_point, capsys):
    from bench.engine import plan

    workload = get_workload(f"{entry_point}:hidden=8")
    assert workload.case == entry_point and workload.config_string == "hidden=8"
    from bench.cli import main

    assert main(["cases"]) == 0  # listed with the built-in cases
    assert "two-layer perceptron" in capsys.readouterr().out
    cells = plan.expand(plan.load_suite("smoke"), cases=[f"{entry_point}:hidden=8"],
                        modes=["session"], phases=["train"], batches=[2])
    assert [c.case_spec for c in cells] == ["tiny:hidden=8"] * len(cells)
    _assert_trained_like_reference(f"{entry_point}:hidden=8", "session", "feed")


# --- keras:PATH ------------------------------------------------------------------------------

@pytest.mark.parametrize("input_style", ["resident", "feed"])
@pytest.mark.parametrize("mode", _modes("infer"))
def test_a_keras_file_runs_every_inference_mode_equivalent_to_its_eager_call(
        models, mode, input_style):
    outputs, _ = _run(models["keras"], mode, "infer", input_style)
    reference, _ = _reference(models["keras"], "infer")
    # The reference is the model's own eager call.
    model = get_workload(models["keras"])
    images, _ = model.inputs(2)
    import keras

    own = np.asarray(keras.saving.load_model(model.path)(images["pixels"], training=False))
    np.testing.assert_array_equal(reference[0], own)
    assert np.max(np.abs(outputs[0] - reference[0])) <= tolerance(mode, "infer")


@pytest.mark.parametrize("mode", ["session", "frozen", "optimized", "xla", "keras"])
def test_several_outputs_are_compared_tensor_by_tensor(models, mode):
    from bench.modes.model_io import unpack

    workload = get_workload(models["keras2"])
    assert len(workload.model_outputs) == 2
    outputs, _ = _run(models["keras2"], mode, "infer")
    reference, _ = _reference(models["keras2"], "infer")
    for mine, ref in zip(unpack(outputs[0], workload), unpack(reference[0], workload),
                         strict=True):
        assert mine.shape == ref.shape == (2, 3)
        assert np.max(np.abs(mine - ref)) <= tolerance(mode, "infer")


@pytest.mark.parametrize("mode", ["function", "xla", "keras"])
def test_a_compiled_keras_file_trains_like_its_gradient_tape_loop(models, mode):
    trained = _assert_trained_like_reference(models["keras"], mode)
    initial = get_workload(models["keras"])
    import keras

    before = keras.saving.load_model(initial.path)
    moved = {v.path for v in before.variables
             if not np.allclose(v.numpy(), trained[v.path], atol=0, rtol=0)}
    assert {"conv/kernel", "bn/moving_mean"} <= moved  # SGD and batch-norm statistics


@pytest.mark.parametrize("mode", ["session", "frozen", "function", "function_epoch", "keras"])
def test_a_keras_file_takes_dataset_input(models, mode):
    outputs, _ = _run(models["keras"], mode, "infer", "dataset")
    reference, _ = _reference(models["keras"], "infer", "dataset")
    assert outputs[0].shape == (2 * EPOCH, 3)
    assert np.max(np.abs(outputs[0] - reference[0])) <= tolerance(mode, "infer")


def test_keras_training_over_a_dataset_epoch(models):
    _assert_trained_like_reference(models["keras"], "function_epoch", "dataset")


def test_keras_file_reasons_where_a_mode_does_not_apply(models):
    with pytest.raises(NotApplicable, match="Session graph of a Keras model"):
        _run(models["keras"], "session", "train")
    with pytest.raises(NotApplicable, match="no loss"):
        _run(models["keras2"], "function", "train")


def test_a_loss_named_by_key_makes_an_uncompiled_model_trainable(tmp_path):
    spec = f"keras:{keras_file(tmp_path, 'plain.keras', loss=None)}:loss=mse"
    assert get_workload(spec).loss == "mse"
    _assert_trained_like_reference(spec, "function")


# --- savedmodel:PATH ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["session", "frozen", "optimized", "function", "xla", "keras"])
def test_a_saved_model_with_two_named_inputs_runs_its_graph_modes(models, mode):
    workload = get_workload(models["savedmodel"])
    assert [t.name for t in workload.model_inputs] == ["a", "b"]
    assert [t.name for t in workload.model_outputs] == ["product", "sum"]
    outputs, _ = _run(models["savedmodel"], mode, "infer")
    reference, _ = _reference(models["savedmodel"], "infer")
    # The reference is the restored signature function itself.
    images, _ = workload.inputs(2)
    restored = tf.saved_model.load(workload.path).signatures["serving_default"]
    own = restored(**{k: tf.constant(v) for k, v in images.items()})
    np.testing.assert_allclose(reference[0][:, :1], own["product"].numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(reference[0][:, 1:], own["sum"].numpy(), rtol=0, atol=0)
    assert np.max(np.abs(outputs[0] - reference[0])) <= tolerance(mode, "infer")


def test_saved_model_inputs_are_the_same_bytes_in_every_mode(models):
    first = _request(models["savedmodel"], "session", "infer")
    second = _request(models["savedmodel"], "keras", "infer", "feed")
    assert first.images.keys() == second.images.keys() == {"a", "b"}
    for name in first.images:
        np.testing.assert_array_equal(first.images[name], second.images[name])


def test_a_saved_model_records_why_eager_and_training_do_not_apply(models):
    from bench.engine.worker import CellOptions, run_cell

    workload = get_workload(models["savedmodel"])
    options = CellOptions(budget_s=0.05, paired_budget_s=0.05, min_samples=3, warmup=1)
    eager = run_cell(Cell(workload.case, "", "eager", "infer", batch=2), options)
    train = run_cell(Cell(workload.case, "", "function", "train", batch=2), options)
    frozen = run_cell(Cell(workload.case, "", "frozen", "infer", batch=2), options)
    assert eager.status == train.status == Status.SKIPPED
    assert "graphs only" in eager.reason and "no loss" in train.reason
    assert frozen.status == Status.OK and frozen.equivalent and frozen.paired_s
    assert frozen.macs_per_image == workload.macs_per_image > 0  # from the graph's ops
    assert frozen.mode_facts["macs_source"].startswith("estimated")


# --- bad models: one line, exit 2, before any timing --------------------------------------------

def _cases_command(spec, capsys):
    from bench.cli import main

    code = main(["cases", spec])
    err = capsys.readouterr().err.strip()
    return code, err


def _custom_layer_model(path):
    import keras

    @keras.saving.register_keras_serializable(package="byom_tests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2.0 * x

    inputs = keras.Input((3,), name="x")
    keras.Model(inputs, Doubler(name="doubler")(inputs)).save(path)
    keras.saving.get_custom_objects().pop("byom_tests>Doubler")  # not supplied anymore
    return Doubler


def _random_saved_model(path):
    class Noisy(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + tf.random.uniform(tf.shape(x))}

    module = Noisy()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def _unknown_dims_model(path):
    import keras

    inputs = keras.Input((None, 3), name="seq")
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(path)


@pytest.mark.parametrize("kind, expected", [
    ("not a model", "not a Keras model file"),
    ("corrupt", "cannot read the Keras model"),
    ("missing", "no such file"),
    ("no saved_model.pb", "not a SavedModel directory"),
    ("custom objects", "custom_objects=PACKAGE.MODULE"),
    ("unknown dimensions", "give them with input_shape="),
    ("outputs differ", "differs between two eager calls"),
    ("unknown signature", "no signature 'nope'"),
    ("bad key value", "dtype 'complex64' is not accepted"),
    ("unknown key", "unknown key 'alpha'"),
])
def test_a_bad_model_is_one_line_and_exit_2(tmp_path, capsys, kind, expected):
    if kind == "not a model":
        (tmp_path / "notes.txt").write_text("hello")
        spec = f"keras:{tmp_path / 'notes.txt'}"
    elif kind == "corrupt":
        (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
        spec = f"keras:{tmp_path / 'broken.keras'}"
    elif kind == "missing":
        spec = f"keras:{tmp_path / 'absent.keras'}"
    elif kind == "no saved_model.pb":
        spec = f"savedmodel:{tmp_path}"
    elif kind == "custom objects":
        _custom_layer_model(tmp_path / "custom.keras")
        spec = f"keras:{tmp_path / 'custom.keras'}"
    elif kind == "unknown dimensions":
        _unknown_dims_model(tmp_path / "seq.keras")
        spec = f"keras:{tmp_path / 'seq.keras'}"
    elif kind == "outputs differ":
        _random_saved_model(tmp_path / "noisy")
        spec = f"savedmodel:{tmp_path / 'noisy'}"
    elif kind == "unknown signature":
        spec = f"savedmodel:{two_input_saved_model(tmp_path)}:nope"
    elif kind == "bad key value":
        spec = f"keras:{keras_file(tmp_path)}:dtype=complex64"
    else:
        spec = f"keras:{keras_file(tmp_path)}:alpha=0.5"
    code, err = _cases_command(spec, capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and expected in err, err


def test_bad_models_stop_a_run_before_any_cell(tmp_path, capsys):
    from bench.cli import main

    (tmp_path / "notes.txt").write_text("hello")
    code = main(["run", "--suite", "smoke", "--case", f"keras:{tmp_path / 'notes.txt'}",
                 "--out", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not a Keras model file" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("results/*.jsonl"))


def test_custom_objects_and_input_shape_keys_fix_what_they_name(tmp_path, monkeypatch):
    import types

    doubler = _custom_layer_model(tmp_path / "custom.keras")
    module = types.ModuleType("byom_custom_layers")
    module.CUSTOM_OBJECTS = {"byom_tests>Doubler": doubler, "Doubler": doubler}
    monkeypatch.setitem(sys.modules, module.__name__, module)
    spec = f"keras:{tmp_path / 'custom.keras'}:custom_objects=byom_custom_layers"
    outputs, _ = _run(spec, "frozen", "infer")
    images, _ = get_workload(spec).inputs(2)
    np.testing.assert_allclose(outputs[0], 2.0 * images["x"], rtol=1e-6)

    _unknown_dims_model(tmp_path / "seq.keras")
    shaped = get_workload(f"keras:{tmp_path / 'seq.keras'}:input_shape=5/3")
    assert shaped.model_inputs[0].shape == (5, 3)


def test_the_seed_and_value_range_keys_shape_the_inputs(models):
    plain = get_workload(models["savedmodel"]).inputs(2)[0]["a"]
    wide = get_workload(f"{models['savedmodel']}:low=-5,high=5,seed=3").inputs(2)[0]["a"]
    assert plain.min() >= 0 and plain.max() < 1
    assert wide.min() < 0 and not np.allclose(plain, wide)
    assert dataclasses.replace  # keys are part of the cell's case spec, so workers see them
    assert get_workload(f"{models['savedmodel']}:seed=3").spec.endswith(":seed=3")


# --- probes -----------------------------------------------------------------------------------

def _probed(spec, mode):
    from bench.engine.worker import CellOptions, run_cell

    workload = get_workload(spec)
    options = CellOptions(budget_s=0.05, paired_budget_s=0.05, min_samples=3, warmup=1,
                          probes=True)
    return run_cell(Cell(workload.case, workload.config_string, mode, "infer", batch=2), options)


@pytest.mark.parametrize("mode", ["optimized", "xla"])
def test_probes_run_on_a_model_file_and_say_why_some_cannot(models, mode):
    record = _probed(models["keras"], mode)
    assert record.status == Status.OK and "dbg_probe_errors" not in record.debug
    assert record.debug["dbg_graph_nodes"] < record.debug["dbg_graph_nodes_built"]
    reasons = record.debug["dbg_probes_not_applicable"]
    assert {r.partition(":")[0] for r in reasons} == {
        "python_calls", "intermediates", "faults", "cost_of_change"}
    assert record.debug["dbg_fault_layer"] is None


@pytest.mark.parametrize("mode", ["eager", "session"])
def test_a_module_case_gets_every_probe(mode):
    record = _probed(MODULE_CASE, mode)
    assert record.status == Status.OK
    assert "dbg_probe_errors" not in record.debug
    assert "dbg_probes_not_applicable" not in record.debug
    assert record.debug["dbg_fault_layer"] in ("hidden", "logits")
    assert record.debug["dbg_intermediates_fraction"] == 1.0


def _xla_hostile_saved_model(path):
    """Runs everywhere but under XLA: string ops have no XLA kernels."""
    class Stringly(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32, name="x")])
        def serve(self, x):
            return {"y": tf.strings.to_number(tf.strings.as_string(x)) * 2.0}

    module = Stringly()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def test_a_mode_that_fails_on_the_model_is_that_cells_error_and_the_run_goes_on(tmp_path):
    from bench.cli import main
    from bench.store.runfiles import load_run

    _xla_hostile_saved_model(tmp_path / "stringly")
    code = main(["run", "--suite", "smoke", "--case", f"savedmodel:{tmp_path / 'stringly'}",
                 "--mode", "xla,function,frozen", "--phase", "infer", "--batch", "2",
                 "--threads", "all", "--budget", "0.05", "--min-samples", "3",
                 "--probes", "none", "--out", str(tmp_path / "results"), "--format", "csv"])
    assert code == 1  # some cells failed
    (path,) = tmp_path.glob("results/*.jsonl")
    status = {r.cell.mode: r for r in load_run(path).records}
    assert status["xla"].status == Status.ERROR and status["xla"].reason
    assert status["function"].status == status["frozen"].status == Status.OK
    assert status["frozen"].equivalent


def test_an_h5_file_is_read_where_keras_still_reads_it(tmp_path):
    spec = f"keras:{keras_file(tmp_path, 'legacy.h5')}"
    outputs, _ = _run(spec, "frozen", "infer")
    reference, _ = _reference(spec, "infer")
    assert np.max(np.abs(outputs[0] - reference[0])) <= tolerance("frozen", "infer")
    # Keras 3 no longer reads this file's compile config: the loss is named by key instead.
    assert get_workload(spec).loss == ""
    _assert_trained_like_reference(f"{spec}:loss=mse", "function")


def test_suite_files_name_model_files_and_module_cases(models, tmp_path):
    from bench.engine import plan

    suite = tmp_path / "mine.toml"
    suite.write_text(
        'description = "mine"\n[defaults]\nmodes = ["eager", "frozen"]\nphases = ["infer"]\n'
        f'[[case]]\nspec = "{models["savedmodel"]}:seed=2"\nbatches = [2]\n'
        f'[[case]]\nspec = "{MODULE_CASE}"\n')
    cells = plan.expand(plan.load_suite(str(suite)))
    assert {c.case_spec for c in cells} == {f"{models['savedmodel']}:seed=2", MODULE_CASE}
    for cell in cells:
        assert get_workload(cell.case_spec).spec == cell.case_spec
    broken = tmp_path / "broken.toml"
    broken.write_text(f'description = "x"\n[[case]]\nspec = "keras:{tmp_path}/none.keras"\n')
    with pytest.raises(plan.SuiteError, match="no such file"):
        plan.load_suite(str(broken))


def test_pytest_benchmark_cells_take_a_model_file(models, tmp_path):
    import json
    import subprocess
    from pathlib import Path

    from conftest import child_env

    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/", "--benchmark-only", "--bench-suite", "smoke",
         "--bench-case", models["savedmodel"], "-k", "(frozen or eager) and infer",
         "--benchmark-json", str(out), "--benchmark-storage", str(tmp_path / "store"),
         "-q", "-p", "no:cacheprovider", "-rs"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
        env=child_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "graphs only" in done.stdout  # the eager cell's skip reason
    (bench,) = json.loads(out.read_text())["benchmarks"]
    assert "-frozen-infer-" in bench["name"] and bench["extra_info"]["equivalent"] is True
