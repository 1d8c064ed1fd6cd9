"""The review web server's settings in the CSMS configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.config import CsmsConfig, load_config
from csms.errors import ConfigError


def test_defaults_and_a_picked_port(tmp_path: Path) -> None:
    assert (CsmsConfig().http_host, CsmsConfig().http_port) == ("127.0.0.1", 8080)
    path = tmp_path / "csms.yaml"
    path.write_text("http_host: 0.0.0.0\nhttp_port: 0\n")
    config = load_config(path)
    assert (config.http_host, config.http_port) == ("0.0.0.0", 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http_port: 70000\n", "key 'http_port': expected 0..65535"),
        ("http_port: web\n", "key 'http_port': expected an integer"),
        ("http_host: ''\n", "key 'http_host': expected an address"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "csms.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
