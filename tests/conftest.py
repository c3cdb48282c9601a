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
