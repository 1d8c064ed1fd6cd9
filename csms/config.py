"""CSMS configuration: a YAML file validated into a frozen dataclass at start-up.

A bad file stops start-up with an error naming the file, the key and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from csms.errors import ConfigError


@dataclass(frozen=True, slots=True)
class CsmsConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    heartbeat_interval: int = 300
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 5.0
    call_timeout: float = 30.0
    max_frame_bytes: int = 262_144
    validate_responses: bool = True

    def with_overrides(self, **overrides: Any) -> CsmsConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_POSITIVE = {
    "heartbeat_interval",
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "call_timeout",
}


def _expect(path: Path, key: str, value: Any, kind: type, what: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: key {key!r}: expected {what}, got {value!r}")
    return value


def load_config(path: Path | str | None) -> CsmsConfig:
    """Read a config file (None gives the defaults)."""
    if path is None:
        return CsmsConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return CsmsConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    known = {f.name: f for f in fields(CsmsConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{path}: unknown key {key!r}: expected one of {', '.join(sorted(known))}"
            )
        default = getattr(CsmsConfig(), key)
        kind = type(default)
        what = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]
        value = _expect(path, key, value, kind, what)
        if key in _POSITIVE and value <= 0:
            raise ConfigError(f"{path}: key {key!r}: expected a positive number, got {value!r}")
        if key == "port" and not 0 <= value <= 65535:
            raise ConfigError(f"{path}: key 'port': expected 0..65535, got {value!r}")
        if key == "max_frame_bytes" and value < 1024:
            raise ConfigError(f"{path}: key 'max_frame_bytes': expected at least 1024")
        values[key] = value
    return CsmsConfig(**values)
