"""Shared test settings: quiet TensorFlow, small thread pools, tiny case configurations."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Small enough that every mode of both cases builds and runs in about a second on 2 cores.
SMALL_CNN = "cnn:input_size=16,conv_filters=4/8,fc_units=16"
SMALL_CNN_VALID = (
    "cnn:input_size=20,channels=3,conv_filters=4/8,kernel_size=5,padding=VALID,pool=avg"
)
SMALL_MOBILENET = "mobilenet:alpha=0.25,resolution=32,classes=10"
# Training equivalence needs enough spatial positions per batch-norm channel to be stable.
TRAIN_MOBILENET = "mobilenet:alpha=0.25,resolution=64,classes=10"


def sigint_default() -> None:
    """Popen preexec_fn: SIGINT handled as in a terminal. A job started in the background of a
    non-interactive shell inherits SIGINT *ignored* (POSIX), and Python then never raises
    KeyboardInterrupt; the Ctrl-C tests must not depend on how the test run was launched."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
