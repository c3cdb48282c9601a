"""The workloads: a configurable plain CNN and MobileNet v1, as weights plus tf-op forward code,
and a user's own model (README "Your own model").

`get_workload("mobilenet:alpha=0.75,resolution=192")` is the one entry point: it parses a case
specification, validates it and returns a `Workload`. Besides the built-in names it accepts
`keras:PATH`, `savedmodel:PATH[:SIGNATURE]` (cases.model), `module:PACKAGE.MODULE:FUNCTION`
and the names installed packages register in the entry point group `tf_graph_bench.cases`
(cases.plugins). Importing this package does not import TensorFlow; running a forward function
does, and so does reading a model file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cases import cnn, mobilenet
from cases.base import ConfigError, Workload
from cases.spec import build_config, split_spec


@dataclass(frozen=True)
class CaseInfo:
    name: str
    summary: str
    config_type: type
    make: Callable[[Any], Workload]


CASES: dict[str, CaseInfo] = {
    "cnn": CaseInfo("cnn", "plain CNN: conv/pool layers, flatten, dense head, softmax",
                    cnn.CnnConfig, cnn.workload),
    "mobilenet": CaseInfo("mobilenet", "MobileNet v1: 13 depthwise-separable blocks, batch norm",
                          mobilenet.MobileNetConfig, mobilenet.workload),
}


WAYS_IN = "keras:PATH, savedmodel:PATH[:SIGNATURE], module:PACKAGE.MODULE:FUNCTION"


def get_workload(spec: str, overrides: dict[str, Any] | None = None) -> Workload:
    """Parse `name[:k=v,...]` (plus optional typed overrides) into a validated Workload."""
    from cases.model import parse_model_spec
    from cases.plugins import MODULE, case_info, registered, split_module_spec

    model = parse_model_spec(spec)
    if model is not None:
        return _model_workload(model, overrides or {})
    if spec.strip().startswith(f"{MODULE}:"):
        case, target, keys = split_module_spec(spec)
        return _plugin_workload(case_info(target, case), case, keys, overrides)
    name, parsed = split_spec(spec)
    if name not in CASES:
        plugins = registered()
        if name in plugins:
            return _plugin_workload(case_info(plugins[name].value, name, plugins[name]), name,
                                    spec.partition(":")[2], overrides)
        accepted = ", ".join([*CASES, *plugins, WAYS_IN])
        raise ConfigError(f"unknown case {name!r}; accepted cases: {accepted}")
    info = CASES[name]
    config = build_config(info.config_type, {**parsed, **(overrides or {})}, name)
    return info.make(config)


def _plugin_workload(info: CaseInfo, case: str, keys: str,
                     overrides: dict[str, Any] | None) -> Workload:
    """A plug-in case under the name cells use for it (so a worker can resolve it again)."""
    _, parsed = split_spec(f"plugin:{keys}")  # the case name itself may hold ':'s
    config = build_config(info.config_type, {**parsed, **(overrides or {})}, case)
    return dataclasses.replace(info.make(config), case=case)


def case_summary(workload: Workload) -> str:
    """The one-line summary of a workload's case, wherever it came from."""
    from cases.model import ModelWorkload
    from cases.plugins import MODULE, case_info, registered

    if workload.case in CASES:
        return CASES[workload.case].summary
    if isinstance(workload, ModelWorkload):
        return (f"{workload.kind} model: {len(workload.model_inputs)} input(s), "
                f"{len(workload.model_outputs)} output(s), MACs estimated from the graph")
    if workload.case.startswith(f"{MODULE}:"):
        return case_info(workload.case.partition(":")[2], workload.case).summary
    entry = registered()[workload.case]
    return case_info(entry.value, workload.case, entry).summary


# Model files are read once per process and spec (planning asks for a workload many times);
# the file's modification time is part of the key, so a rewritten file is read again.
_models: dict[tuple, Workload] = {}


def _model_workload(model: Any, overrides: dict[str, Any]) -> Workload:
    from cases.model import KERAS, ModelConfig

    _, parsed = split_spec(f"{model.kind}:{model.keys}")
    config = build_config(ModelConfig, {**parsed, **overrides}, model.case)
    try:
        stamp = os.stat(model.path).st_mtime_ns
    except OSError:
        stamp = None
    key = (model, config, stamp)
    if key not in _models:
        if model.kind == KERAS:
            from cases.keras_model import workload
        else:
            from cases.saved_model import workload
        _models[key] = workload(model, config)
    return _models[key]


__all__ = ["CASES", "CaseInfo", "ConfigError", "Workload", "case_summary", "get_workload"]
