"""One endpoint, three versions: offer parsing, preference, CALLERROR spellings, handshakes."""

from __future__ import annotations

import asyncio
import json

import pytest

from csms.app import CsmsApp
from csms.ocpp.versions import (
    OCPP16,
    OCPP21,
    OCPP201,
    SUPPORTED,
    OcppVersion,
    parse_offer,
    select_version,
)
from tests.csms.conftest import PASSWORD, STATION, auth_header, open_client


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["ocpp1.6"], ["ocpp1.6"]),
        ([",ocpp1.6"], ["ocpp1.6"]),
        (["ocpp1.6,"], ["ocpp1.6"]),
        ([" , ocpp2.0.1 ,, ocpp1.6 "], ["ocpp2.0.1", "ocpp1.6"]),
        (["ocpp1.6 ocpp2.1"], ["ocpp1.6", "ocpp2.1"]),
        (['"ocpp2.1"'], ["ocpp2.1"]),
        (["ocpp1.6", "ocpp2.0.1, ocpp1.6"], ["ocpp1.6", "ocpp2.0.1"]),
        ([",", ""], []),
    ],
)
def test_parse_offer_tolerates_what_stations_send(headers: list[str], expected: list[str]) -> None:
    assert parse_offer(headers) == expected


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6"], "ocpp1.6"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], "ocpp2.1"),
        (["ocpp2.1", "ocpp1.6"], "ocpp2.1"),
        (["OCPP1.6"], "ocpp1.6"),
        (["ocpp1.5", "ocpp2.0"], None),
        ([], None),
    ],
)
def test_select_version_prefers_the_newest(offered: list[str], chosen: str | None) -> None:
    version = select_version(offered)
    assert (version.subprotocol if version else None) == chosen


def test_supported_order_is_newest_first() -> None:
    assert list(SUPPORTED) == ["ocpp2.1", "ocpp2.0.1", "ocpp1.6"]


def test_each_version_spells_error_codes_as_its_specification() -> None:
    assert OCPP16.error_code("FormatViolation") == "FormationViolation"
    assert OCPP16.error_code("OccurrenceConstraintViolation") == "OccurenceConstraintViolation"
    assert OCPP16.error_code("RpcFrameworkError") == "FormationViolation"
    assert OCPP201.error_code("OccurrenceConstraintViolation") == "OccurenceConstraintViolation"
    assert OCPP201.error_code("FormatViolation") == "FormatViolation"
    assert OCPP21.error_code("OccurrenceConstraintViolation") == "OccurrenceConstraintViolation"
    assert OCPP21.error_code("FormatViolation") == "FormatViolation"


def test_schema_files_follow_each_version_naming() -> None:
    assert OCPP16.request_schema("StartTransaction").name == "StartTransaction.json"
    assert OCPP16.request_schema("StartTransaction").is_file()
    assert OCPP16.response_schema("StartTransaction").is_file()
    assert OCPP21.request_schema("NotifyEVChargingNeeds").is_file()
    assert OCPP21.request_schema("NotifyAllowedEnergyTransfer").is_file()
    assert not OCPP201.request_schema("NotifyAllowedEnergyTransfer").is_file()


async def raw_handshake(port: int, offer: str) -> tuple[int, dict[str, str]]:
    """Send a websocket upgrade with ``offer`` verbatim; return the status and headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = auth_header(STATION, PASSWORD)["Authorization"]
    request = (
        f"GET /ocpp/{STATION} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {offer}\r\n"
        f"Authorization: {auth}\r\n\r\n"
    )
    writer.write(request.encode("latin-1"))
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


@pytest.mark.parametrize(
    ("offer", "chosen"),
    [
        (",ocpp1.6", "ocpp1.6"),
        ("ocpp1.6, ,ocpp2.0.1", "ocpp2.0.1"),
        ("ocpp1.6 ocpp2.1", "ocpp2.1"),
        ("OCPP1.6", "ocpp1.6"),
        ("ocpp2.0.1;", None),
        ("ocpp1.5, ocpp2.0", None),
    ],
)
async def test_malformed_offers_are_accepted_over_a_real_socket(
    csms: CsmsApp, offer: str, chosen: str | None
) -> None:
    status, headers = await raw_handshake(csms.port, offer)
    if chosen is None:
        assert status == 400
    else:
        assert status == 101
        assert headers["sec-websocket-protocol"] == chosen


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6"], "ocpp1.6"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp1.6", "ocpp2.0.1", "ocpp2.1"], "ocpp2.1"),
    ],
)
async def test_negotiation_picks_the_newest_common_version(
    csms: CsmsApp, offered: list[str], chosen: str
) -> None:
    client = await open_client(csms, subprotocols=offered)
    assert client.ws.subprotocol == chosen
    await client.ws.close()


@pytest.mark.parametrize(
    ("subprotocol", "frame", "code"),
    [
        # a required field missing
        (
            "ocpp1.6",
            [2, "a", "BootNotification", {"chargePointModel": "M"}],
            "OccurenceConstraintViolation",
        ),
        (
            "ocpp2.0.1",
            [2, "a", "BootNotification", {"reason": "PowerUp"}],
            "OccurenceConstraintViolation",
        ),
        (
            "ocpp2.1",
            [2, "a", "BootNotification", {"reason": "PowerUp"}],
            "OccurrenceConstraintViolation",
        ),
        # a field the schema does not allow
        (
            "ocpp1.6",
            [2, "a", "Heartbeat", {"extra": 1}],
            "FormationViolation",
        ),
        ("ocpp2.1", [2, "a", "Heartbeat", {"extra": 1}], "FormatViolation"),
        # a message type no version knows
        ("ocpp1.6", [7, "a", "Heartbeat", {}], "FormationViolation"),
        ("ocpp2.1", [7, "a", "Heartbeat", {}], "MessageTypeNotSupported"),
        # an action of another version
        ("ocpp1.6", [2, "a", "TransactionEvent", {}], "NotImplemented"),
        ("ocpp2.0.1", [2, "a", "StartTransaction", {}], "NotImplemented"),
    ],
)
async def test_callerror_codes_use_the_negotiated_spelling(
    csms: CsmsApp, subprotocol: str, frame: list[object], code: str
) -> None:
    client = await open_client(csms, subprotocols=[subprotocol])
    assert client.ws.subprotocol == subprotocol
    await client.send_raw(json.dumps(frame))
    answer = await client.recv_json()
    assert answer[:3] == [4, "a", code]
    await client.ws.close()


# The RPC error codes each version's OCPP-J specification defines.
CODES_16 = {
    "NotImplemented",
    "NotSupported",
    "InternalError",
    "ProtocolError",
    "SecurityError",
    "FormationViolation",
    "PropertyConstraintViolation",
    "OccurenceConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
}
CODES_2X = {
    "FormatViolation",
    "GenericError",
    "InternalError",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "SecurityError",
    "TypeConstraintViolation",
}


def _call_error_classes(base: type) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found.append(sub)
        found.extend(_call_error_classes(sub))
    return found


@pytest.mark.parametrize(
    ("version", "allowed"),
    [
        (OCPP16, CODES_16),
        (OCPP201, CODES_2X | {"OccurenceConstraintViolation"}),
        (OCPP21, CODES_2X | {"OccurrenceConstraintViolation"}),
    ],
)
def test_every_error_the_csms_raises_has_a_code_of_the_version(
    version: OcppVersion, allowed: set[str]
) -> None:
    from csms.errors import OcppCallError

    codes = {cls.code for cls in [OcppCallError, *_call_error_classes(OcppCallError)]}
    assert len(codes) >= 12
    for code in codes:
        assert version.error_code(code) in allowed, (version.subprotocol, code)
