"""Loading a user's model file in this process: a Keras file or a SavedModel signature, one call.

Apart from cases.loaded (the LoadedModel both loaders build, and what runs on it) so that
neither loader imports the module that dispatches to it.
"""

from __future__ import annotations

from cases.keras_model import load_keras
from cases.loaded import LoadedModel
from cases.model import SAVEDMODEL, ModelWorkload
from cases.saved_model import load_signature


def load(workload: ModelWorkload) -> LoadedModel:
    """A fresh copy of the model (its own variables): modes that train must not share them."""
    if workload.kind == SAVEDMODEL:
        return load_signature(workload)
    return load_keras(workload)
