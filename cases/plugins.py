"""Cases from outside the suite: `module:PACKAGE.MODULE:FUNCTION` and the entry point group
`tf_graph_bench.cases`.

The plug-in contract is the built-in cases' own interface: FUNCTION takes no arguments and
returns a `cases.CaseInfo` (a name, a one-line summary, a frozen config dataclass whose fields
are the case keys, and `make(config) -> cases.base.Workload`). The Workload's `forward` is
written in `tf.nn` / `tf.math` ops, so a plug-in case gets every mode the built-in cases get,
Session training included. `examples/tiny_mlp.py` is a complete one.

An installed package registers a case under a name of its own in its pyproject.toml:

    [project.entry-points."tf_graph_bench.cases"]
    tiny = "mypackage.cases:tiny_case"

and `--case tiny:hidden=32` then works like `--case cnn:...`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from cases.base import ConfigError

ENTRY_POINT_GROUP = "tf_graph_bench.cases"
MODULE = "module"


def registered() -> dict[str, Any]:
    """Entry points of installed packages in the group, by name (not yet loaded)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def split_module_spec(spec: str) -> tuple[str, str, str]:
    """`module:pkg.mod:fn[:k=v,...]` -> (case name `module:pkg.mod:fn`, target, keys)."""
    parts = spec.strip().split(":")
    if len(parts) < 3 or not parts[1] or not parts[2]:
        raise ConfigError(f"{spec!r}: expected module:PACKAGE.MODULE:FUNCTION[:key=value,...]")
    keys = ":".join(parts[3:])
    return f"{MODULE}:{parts[1]}:{parts[2]}", f"{parts[1]}:{parts[2]}", keys


def case_info(target: str, where: str, loader=None) -> Any:
    """Import `pkg.mod:fn` (or load the entry point), call it, check it returned a CaseInfo."""
    from cases import CaseInfo

    try:
        if loader is not None:
            factory = loader.load()
        else:
            module_name, _, function = target.partition(":")
            factory = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}: cannot import {target}: {exc}") from None
    info = factory() if callable(factory) and not isinstance(factory, CaseInfo) else factory
    if not isinstance(info, CaseInfo):
        raise ConfigError(f"{where}: {target} returned {type(info).__name__}, not a "
                          "cases.CaseInfo (see cases/plugins.py for the contract)")
    return info
