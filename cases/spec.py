"""Parse case specifications such as `mobilenet:alpha=0.75,resolution=192,classes=1000`.

Values are converted by the type of the configuration field: int, float, str, or a tuple of
ints written with `/` between items (`conv_filters=32/64`), because `,` separates keys.
Pure Python: listing and validating cases never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from cases.base import ConfigError


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`"cnn:kernel_size=5,padding=VALID"` -> `("cnn", {"kernel_size": "5", ...})`."""
    name, _, rest = spec.strip().partition(":")
    overrides: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"{spec!r}: expected key=value, got {item!r}")
        overrides[key.strip()] = value.strip()
    return name.strip(), overrides


def build_config(config_type: type, overrides: dict[str, Any], case: str) -> Any:
    """A config dataclass from defaults plus overrides, with each value converted and checked."""
    hints = typing.get_type_hints(config_type)
    names = [f.name for f in dataclasses.fields(config_type)]
    values = {}
    for key, raw in overrides.items():
        if key not in hints:
            raise ConfigError(
                f"{case}: unknown key {key!r}; accepted keys: {', '.join(names)}"
            )
        values[key] = _convert(raw, hints[key], f"{case}: {key}")
    return config_type(**values)


def _convert(raw: Any, hint: Any, where: str) -> Any:
    if isinstance(raw, bool) and hint is not bool:  # TOML `true` is an int to Python; not here
        raise ConfigError(f"{where}: {str(raw).lower()} is a boolean; expected {_kind(hint)}")
    if not isinstance(raw, str):  # from a TOML table: already typed
        if typing.get_origin(hint) is tuple and isinstance(raw, list):
            return tuple(_convert(v, int, where) for v in raw)
        if hint is float and isinstance(raw, int):
            raw = float(raw)
        if isinstance(raw, hint if isinstance(hint, type) else tuple):
            return _finite(raw, where)
        raw = str(raw)
    try:
        if typing.get_origin(hint) is tuple:
            return tuple(int(v) for v in raw.split("/") if v != "")
        if hint is bool:
            return raw.lower() in ("1", "true", "yes")
        value = hint(raw)
    except (ValueError, OverflowError):
        raise ConfigError(f"{where}: {raw!r} is not a valid {_kind(hint)}") from None
    return _finite(value, where)


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return "integers separated by '/'"
    return getattr(hint, "__name__", str(hint))


def _finite(value: Any, where: str) -> Any:
    """inf and nan parse as floats but are no size; each config's validate sets the ceilings."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return value


def config_string(config: Any) -> str:
    """Canonical `k=v,...` of the keys that differ from the defaults (stable across runs)."""
    default = type(config)()
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value != getattr(default, f.name):
            text = "/".join(map(str, value)) if isinstance(value, tuple) else str(value)
            parts.append(f"{f.name}={text}")
    return ",".join(parts)


def describe_defaults(config: Any) -> str:
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        text = "/".join(map(str, value)) if isinstance(value, tuple) else str(value)
        parts.append(f"{f.name}={text}")
    return ",".join(parts)
