from __future__ import annotations

import base64

import pytest

from chargepoint.config import StationConfig
from chargepoint.connection import basic_auth_header, csms_urls, station_url
from chargepoint.errors import ConfigError
from chargepoint.runner import StationRunner


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


def test_several_csms_urls_are_split_on_commas_and_each_checked() -> None:
    assert csms_urls(" ws://a:1/ocpp, ws://b:2/ocpp ,") == ("ws://a:1/ocpp", "ws://b:2/ocpp")
    with pytest.raises(ConfigError, match="no CSMS URL"):
        csms_urls(" , ")
    with pytest.raises(ConfigError, match="http://b"):
        StationRunner(StationConfig(url="ws://a:1/ocpp", fallback_urls=("http://b",),
                                    station_id="CS-1"))  # fmt: skip
    runner = StationRunner(
        StationConfig(url="ws://a:1/ocpp", fallback_urls=("ws://b:2/ocpp",), station_id="CS-1")
    )
    assert runner.urls == ("ws://a:1/ocpp/CS-1", "ws://b:2/ocpp/CS-1")
