"""TensorFlow process setup shared by every mode: quiet logs, thread pools, device checks."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep INFO/WARNING chatter out; errors stay

# TensorFlow's __init__ imports Keras 3 eagerly ("keras.src.optimizers", which brings pandas
# and matplotlib through Keras' visualization utilities): 7.3-7.7 s -> 5.2-5.5 s for
# `import tensorflow` here without it. Every worker's parent pays that import (a forkserver
# per run, an A/B side server per side), and only the keras modes and users' models use Keras.
# So TF is imported with that one module masked; `tf.keras` and `import keras` still work
# later, and the forkserver and side servers import Keras before forking when a cell needs it
# (bench.modes.needs_keras).
_KERAS_EAGER_LOADS = ("keras.src.optimizers", "tf_keras.src.optimizers")


def _import_tensorflow_without_keras():
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    masked = [name for name in _KERAS_EAGER_LOADS if name not in sys.modules]
    for name in masked:
        sys.modules[name] = None  # an import of it raises ImportError, which TF catches
    try:
        import tensorflow
    finally:
        for name in masked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return tensorflow


tf = _import_tensorflow_without_keras()

from bench.modes.base import DeviceUnavailable, Threads  # noqa: E402
from bench.store.record import Device  # noqa: E402

_configured: Threads | None = None


def quiet_python_logging() -> None:
    """TF and absl warn through Python logging too; keep warnings out, errors in."""
    import logging

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def configure_threads(threads: Threads) -> Threads:
    """Set eager/tf.function thread pools once per process (TF forbids changing them later)."""
    global _configured
    if _configured is None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads.intra_op)
            tf.config.threading.set_inter_op_parallelism_threads(threads.inter_op)
        except RuntimeError:
            pass  # the context is already initialised (e.g. in tests): keep what is in force
        _configured = Threads(tf.config.threading.get_intra_op_parallelism_threads(),
                              tf.config.threading.get_inter_op_parallelism_threads())
    return _configured


def session_config(threads: Threads, device: str) -> tf.compat.v1.ConfigProto:
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads.intra_op,
        inter_op_parallelism_threads=threads.inter_op,
        allow_soft_placement=False,  # a GPU cell must really run on the GPU
    )
    if device == Device.GPU:
        config.gpu_options.allow_growth = True
    return config


def device_name(device: str) -> str:
    """`cpu` -> `/CPU:0`; `gpu` -> `/GPU:0`, or DeviceUnavailable when TF sees no GPU."""
    if device == Device.CPU:
        return "/CPU:0"
    if device == Device.GPU:
        if not tf.config.list_physical_devices("GPU"):
            raise DeviceUnavailable(
                "device 'gpu' requested but TensorFlow sees no GPU on this machine "
                "(install the 'gpu' extra on a CUDA machine, or use --device cpu)"
            )
        return "/GPU:0"
    raise ValueError(f"unknown device {device!r}; accepted: {', '.join(Device)}")


@contextmanager
def stage(timings: dict[str, float], name: str) -> Iterator[None]:
    """Time one setup stage into `timings[name]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


quiet_python_logging()


def device_peak_memory_mb(device: str) -> float | None:
    """TensorFlow's own peak allocation on the GPU; None on the CPU (RSS covers it)."""
    if device != Device.GPU:
        return None
    try:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except (ValueError, RuntimeError):
        return None


def measure_peak_flops(device: str, size: int = 1024, repeats: int = 10) -> float:
    """Achievable float32 FLOP/s: the best of several large matrix products on the device.

    A dense matmul is the most efficient kernel TF has, so it is the honest ceiling against
    which each cell's achieved FLOP/s is read. 1024 x 1024, not 2048: on one pinned EPYC
    thread 2048 gave 65.4-68.4 GFLOP/s in 1.75-2.0 s, 1024 62.8-66.0 in 0.26-0.28 s (three
    alternating repeats each, 5 products), and every run calibrates each thread profile twice.
    """
    import numpy as np

    with tf.device(device_name(device)):
        a = tf.random.stateless_normal((size, size), seed=(1, 2))
        b = tf.random.stateless_normal((size, size), seed=(3, 4))
        product = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))
        product(a, b).numpy()  # trace, warm up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            product(a, b).numpy()
            best = min(best, time.perf_counter() - start)
    return float(2 * size**3 / best) if np.isfinite(best) else 0.0


def tf_facts() -> dict:
    """TensorFlow version and build facts recorded with every run."""
    build = dict(tf.sysconfig.get_build_info())
    facts = {
        "tensorflow": tf.__version__,
        "tf_cuda_build": bool(build.get("is_cuda_build", False)),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on for x86 CPU builds)"),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }
    try:  # the installed version, without importing Keras (see _import_tensorflow_without_keras)
        from importlib.metadata import version

        facts["keras"] = version("keras")
    except ImportError:
        pass
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        facts.setdefault("gpu_names", []).append(details.get("device_name", gpu.name))
    return facts
