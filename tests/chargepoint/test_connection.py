from __future__ import annotations

import base64

import pytest

from chargepoint.connection import basic_auth_header, station_url
from chargepoint.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://h:9000/ocpp", "ws://h:9000/ocpp/CP1"),
        ("ws://h:9000/ocpp/", "ws://h:9000/ocpp/CP1"),
        ("ws://h:9000/ocpp/CP1", "ws://h:9000/ocpp/CP1"),
        ("wss://h/ocpp/CP1/", "wss://h/ocpp/CP1"),
        ("ws://h:9000", "ws://h:9000/CP1"),
    ],
)
def test_station_url_accepts_base_or_full_url(url: str, expected: str) -> None:
    assert station_url(url, "CP1") == expected


def test_station_id_is_quoted_in_the_path() -> None:
    assert station_url("ws://h/ocpp", "CP 1#x") == "ws://h/ocpp/CP%201%23x"


@pytest.mark.parametrize("url", ["http://h/ocpp", "h:9000/ocpp", "ws:///ocpp"])
def test_non_websocket_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        station_url(url, "CP1")


def test_basic_auth_header_encodes_id_and_password() -> None:
    header = basic_auth_header("CP1", "pa:ss word")
    scheme, token = header.split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "CP1:pa:ss word"
