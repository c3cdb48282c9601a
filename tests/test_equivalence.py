"""Every mode computes the same thing as the eager reference, for the same weights and bytes."""

import dataclasses
import functools

import numpy as np
import pytest
from conftest import SMALL_CNN, SMALL_CNN_VALID, SMALL_MOBILENET, TRAIN_MOBILENET

from bench.modes import MODE_TABLE, Request, accepts_input, load_mode, tolerance
from bench.modes.base import EQUIVALENCE_STEPS, NotApplicable
from cases import get_workload

tf = pytest.importorskip("tensorflow")

INFER_MODES = [m for m, info in MODE_TABLE.items() if "infer" in info.phases]
TRAIN_MODES = [m for m, info in MODE_TABLE.items() if "train" in info.phases]


def _request(spec, batch, phase, input_style="resident", seed=0):
    workload = get_workload(spec)
    images, labels = workload.inputs(batch, seed)
    return Request(workload, workload.weights(seed), images, labels, phase, "cpu", input_style)


_reference_cache = {}


def _eager_logits(spec, batch):
    if (spec, batch) not in _reference_cache:
        prepared = load_mode("eager").prepare(_request(spec, batch, "infer"))
        _reference_cache[spec, batch] = np.asarray(prepared.step())
    return _reference_cache[spec, batch]


@pytest.mark.parametrize("input_style", ["resident", "feed"])
@pytest.mark.parametrize("mode", [m for m in INFER_MODES if accepts_input(m, "feed")])
@pytest.mark.parametrize("spec", [SMALL_CNN, SMALL_CNN_VALID, SMALL_MOBILENET])
def test_inference_matches_eager(spec, mode, input_style):
    prepared = load_mode(mode).prepare(_request(spec, 3, "infer", input_style))
    logits = np.asarray(prepared.step())
    reference = _eager_logits(spec, 3)
    assert logits.shape == reference.shape == (3, get_workload(spec).classes)
    assert np.max(np.abs(logits - reference)) <= tolerance(mode, "infer")
    # The same step again gives the same answer (no hidden state in inference).
    np.testing.assert_array_equal(np.asarray(prepared.step()), logits)
    prepared.close()


def _train(mode, spec, input_style, calls=EQUIVALENCE_STEPS):
    """Losses and weights after `calls` single-batch SGD steps of the mode."""
    prepared = load_mode(mode).prepare(_request(spec, 4, "train", input_style))
    one_batch = prepared.single_step or prepared.step
    losses = [float(one_batch()) for _ in range(calls)]
    weights = prepared.read_weights()
    prepared.close()
    return losses, weights


@functools.cache
def _eager_train(spec, calls):
    """The eager reference of _train, computed once per case and step count (every mode
    compares with it; `calls` positional, so one count is one cache entry)."""
    return _train("eager", spec, "resident", calls=calls)


@pytest.mark.parametrize("mode", [m for m in TRAIN_MODES if m != "eager"
                                  and accepts_input(m, "feed")])
@pytest.mark.parametrize("spec", [SMALL_CNN, TRAIN_MOBILENET])
def test_training_matches_eager_after_three_steps(spec, mode):
    losses, weights = _train(mode, spec, "feed")
    ref_losses, ref_weights = _eager_train(spec, EQUIVALENCE_STEPS)
    initial = get_workload(spec).weights(0)
    assert set(weights) == set(ref_weights) == set(initial)
    tol = tolerance(mode, "train")
    assert max(abs(a - b) for a, b in zip(losses, ref_losses, strict=True)) <= tol
    for name in ref_weights:
        assert np.max(np.abs(weights[name] - ref_weights[name])) <= tol, name
    # Training really happened: trainable weights and batch-norm statistics moved.
    moved = {n for n in initial if not np.array_equal(ref_weights[n], initial[n])}
    assert set(get_workload(spec).trainable_names) <= moved
    if "mobilenet" in spec:
        assert "conv1/bn/moving_mean" in moved


def test_keras_training_call_runs_several_batches_of_model_fit():
    """The measured keras step is one Model.fit epoch of several batches (8 SGD steps)."""
    prepared = load_mode("keras").prepare(_request(SMALL_CNN, 4, "train", "feed"))
    assert prepared.batches_per_call > 1
    epoch_loss = float(prepared.step())
    ref_losses, _ = _train("eager", SMALL_CNN, "resident", calls=prepared.batches_per_call)
    assert abs(epoch_loss - float(np.mean(ref_losses))) <= tolerance("keras", "train")


def test_eager_training_loss_decreases_on_a_fixed_batch():
    losses, _ = _train("eager", SMALL_CNN, "resident")
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("mode", ["frozen", "optimized"])
def test_inference_only_modes_refuse_training(mode):
    with pytest.raises(NotApplicable, match="not applicable"):
        load_mode(mode).prepare(_request(SMALL_CNN, 2, "train"))


def test_keras_model_is_the_standard_network():
    """Same weights through standard Keras layers give the raw-op network's logits."""
    for spec in (SMALL_CNN, SMALL_CNN_VALID, SMALL_MOBILENET):
        workload = get_workload(spec)
        images, _ = workload.inputs(3)
        model = workload.keras_model(workload.weights(0))
        keras_logits = np.asarray(model(images, training=False))
        np.testing.assert_allclose(keras_logits, _eager_logits(spec, 3), atol=1e-4)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert trainable == workload.params


# Dataset input: one call is one epoch over EPOCH distinct batches, in the same order everywhere.
EPOCH = 3
DATASET_INFER_MODES = [m for m in INFER_MODES if accepts_input(m, "dataset")]
DATASET_TRAIN_MODES = [m for m in TRAIN_MODES if accepts_input(m, "dataset")]


def _epoch_request(spec, phase, batch=2):
    return dataclasses.replace(_request(spec, batch, phase, "dataset"), epoch_batches=EPOCH)


def _epoch(mode, spec, phase):
    """The first epoch's output (logits of every batch, or mean loss) and, training, weights."""
    prepared = load_mode(mode).prepare(_epoch_request(spec, phase))
    assert prepared.batches_per_call == EPOCH
    out = np.asarray(prepared.step())
    weights = prepared.read_weights() if phase == "train" else None
    prepared.close()
    return out, weights


@functools.cache
def _eager_epoch(spec, phase):
    return _epoch("eager", spec, phase)


@pytest.mark.parametrize("mode", DATASET_INFER_MODES)
@pytest.mark.parametrize("spec", [SMALL_CNN, SMALL_MOBILENET])
def test_dataset_inference_epoch_matches_eager(spec, mode):
    logits, _ = _epoch(mode, spec, "infer")
    reference, _ = _eager_epoch(spec, "infer")
    assert logits.shape == reference.shape == (EPOCH * 2, get_workload(spec).classes)
    assert np.max(np.abs(logits - reference)) <= tolerance(mode, "infer")
    # The epoch starts with the single-batch styles' batch and its batches are distinct.
    np.testing.assert_allclose(reference[:2], _eager_logits(spec, 2), atol=1e-5)
    assert not np.allclose(reference[:2], reference[2:4])


@pytest.mark.parametrize("mode", [m for m in DATASET_TRAIN_MODES if m != "eager"])
@pytest.mark.parametrize("spec", [SMALL_CNN, TRAIN_MOBILENET])
def test_dataset_training_epoch_matches_eager(spec, mode):
    loss, weights = _epoch(mode, spec, "train")
    ref_loss, ref_weights = _eager_epoch(spec, "train")
    tol = tolerance(mode, "train")
    assert abs(float(loss) - float(ref_loss)) <= tol
    assert set(weights) == set(ref_weights)
    for name in ref_weights:
        assert np.max(np.abs(weights[name] - ref_weights[name])) <= tol, name
    # One epoch is EPOCH SGD steps over distinct batches: not EPOCH steps on batch 0.
    _, same_batch = _eager_train(spec, EPOCH)
    assert any(not np.allclose(same_batch[n], ref_weights[n]) for n in ref_weights)
    if "mobilenet" in spec:  # batch-norm statistics moved inside the epoch's loop too
        assert not np.allclose(weights["conv1/bn/moving_mean"],
                               get_workload(spec).weights(0)["conv1/bn/moving_mean"])


def test_function_epoch_takes_only_dataset_input():
    with pytest.raises(NotApplicable, match="dataset"):
        load_mode("function_epoch").prepare(_request(SMALL_CNN, 2, "infer", "feed"))
