"""TensorFlow is imported without its eager Keras import (bench.modes.runtime), and Keras is
preloaded before forking only for cells that use it (bench.modes.needs_keras)."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.modes import needs_keras
from bench.store.record import Cell

ROOT = Path(__file__).resolve().parent.parent


def _cell(case="cnn", mode="eager"):
    return Cell(case=case, config="", mode=mode, phase="infer")


def test_only_keras_modes_and_users_models_need_keras():
    assert not needs_keras([_cell(), _cell("mobilenet", "session"), _cell(mode="xla")])
    assert needs_keras([_cell(), _cell(mode="keras")])
    assert needs_keras([_cell("keras:model.keras")])
    assert needs_keras([_cell("module:examples.tiny_mlp:workload")])
    assert not needs_keras([])


def test_the_runtime_imports_tensorflow_without_keras_and_keras_still_works_after():
    pytest.importorskip("tensorflow")
    code = ("import sys, bench.modes.runtime as rt; "
            "assert 'keras' not in sys.modules, 'keras imported'; "
            "assert 'keras.src.optimizers' not in sys.modules, 'mask left behind'; "
            "assert rt.tf_facts()['keras']; "
            "layer = rt.tf.keras.layers.Dense(2); import keras; "
            "print(type(layer).__module__.split('.')[0], keras.__version__)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "2",
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "keras"
