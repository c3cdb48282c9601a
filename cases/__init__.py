"""The workloads: a configurable plain CNN and MobileNet v1, as weights plus tf-op forward code.

`get_workload("mobilenet:alpha=0.75,resolution=192")` is the one entry point: it parses a case
specification, validates it and returns a `Workload`. Importing this package does not import
TensorFlow; only running a forward function does.
"""

from __future__ import annotations

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


def get_workload(spec: str, overrides: dict[str, Any] | None = None) -> Workload:
    """Parse `name[:k=v,...]` (plus optional typed overrides) into a validated Workload."""
    name, parsed = split_spec(spec)
    if name not in CASES:
        raise ConfigError(f"unknown case {name!r}; accepted cases: {', '.join(CASES)}")
    info = CASES[name]
    config = build_config(info.config_type, {**parsed, **(overrides or {})}, name)
    return info.make(config)


__all__ = ["CASES", "ConfigError", "Workload", "get_workload"]
