from __future__ import annotations

from pathlib import Path

import pytest

from csms.config import CsmsConfig, load_config
from csms.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "csms.yaml"
    path.write_text(text)
    return path


def test_defaults_and_values(tmp_path: Path) -> None:
    assert load_config(None) == CsmsConfig()
    config = load_config(write(tmp_path, "port: 9100\nheartbeat_interval: 60\nping_interval: 5\n"))
    assert (config.port, config.heartbeat_interval, config.ping_interval) == (9100, 60, 5.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("port: nine\n", "key 'port': expected an integer"),
        ("port: 70000\n", "key 'port': expected 0..65535"),
        ("heartbeat_intervall: 5\n", "unknown key 'heartbeat_intervall'"),
        ("ping_timeout: -1\n", "key 'ping_timeout': expected a positive number"),
        ("keep_meter_values: 0\n", "key 'keep_meter_values': expected a positive number"),
        ("keep_reports: many\n", "key 'keep_reports': expected an integer"),
        ("validate_responses: maybe\n", "key 'validate_responses': expected true or false"),
        ("- a\n- b\n", "expected a mapping"),
        ("port: [1\n", "not valid YAML"),
    ],
)
def test_bad_file_names_file_key_and_expectation(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600.0), ("15m", 900.0), ("90s", 90.0), ("45", 45.0), ("2.5", 2.5), ("0", 0.0)],
)
def test_ledger_max_idle_interval_takes_a_duration(
    tmp_path: Path, text: str, seconds: float
) -> None:
    path = tmp_path / "csms.yaml"
    path.write_text(f"ledger_max_idle_interval: {text}\n")
    assert load_config(path).ledger_max_idle_interval == seconds
    assert CsmsConfig().ledger_max_idle_interval == 0  # off by default


@pytest.mark.parametrize("text", ["soon", "-5", "1 week", "true"])
def test_a_bad_ledger_max_idle_interval_names_file_key_and_form(tmp_path: Path, text: str) -> None:
    path = tmp_path / "csms.yaml"
    path.write_text(f"ledger_max_idle_interval: {text}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "'ledger_max_idle_interval'" in message
    assert "duration" in message
