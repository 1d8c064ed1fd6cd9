"""Every frame whose id can be recovered gets the right CALLERROR; the connection carries on."""

from __future__ import annotations

import json

import pytest

from csms.app import CsmsApp
from tests.csms.conftest import BOOT, open_client

CASES = [
    # (frame text, expected message id, expected error code)
    ("not json at all", "-1", "RpcFrameworkError"),
    ('[2, "abc", "Heartbeat", {', "abc", "RpcFrameworkError"),
    ("{}", "-1", "RpcFrameworkError"),
    ("[]", "-1", "RpcFrameworkError"),
    ('[2, 17, "Heartbeat", {}]', "-1", "RpcFrameworkError"),
    ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "-1", "RpcFrameworkError"),
    ('["2", "id1", "Heartbeat", {}]', "id1", "RpcFrameworkError"),
    ('[2, "id2", "Heartbeat"]', "id2", "RpcFrameworkError"),
    ('[2, "id3", 5, {}]', "id3", "RpcFrameworkError"),
    ('[2, "id4", "Heartbeat", []]', "id4", "FormatViolation"),
    ('[7, "id5", "Heartbeat", {}]', "id5", "MessageTypeNotSupported"),
    ('[2, "id6", "FlyToTheMoon", {}]', "id6", "NotImplemented"),
    ('[2, "id7", "GetVariables", {"getVariableData": []}]', "id7", "NotImplemented"),
    (
        json.dumps([2, "id8", "BootNotification", {"reason": "PowerUp"}]),
        "id8",
        "OccurenceConstraintViolation",  # OCPP 2.0.1's own spelling
    ),
    (
        json.dumps([2, "id9", "BootNotification", {**BOOT, "reason": 7}]),
        "id9",
        "TypeConstraintViolation",
    ),
    (
        json.dumps([2, "id10", "BootNotification", {**BOOT, "reason": "Bored"}]),
        "id10",
        "PropertyConstraintViolation",
    ),
    (
        json.dumps([2, "id11", "BootNotification", {**BOOT, "extra": 1}]),
        "id11",
        "FormatViolation",
    ),
    (
        json.dumps(
            [
                2,
                "id12",
                "StatusNotification",
                {
                    "timestamp": "2026-11-25T10:00:00",
                    "connectorStatus": "Available",
                    "evseId": 1,
                    "connectorId": 1,
                },
            ]
        ),
        "id12",
        "PropertyConstraintViolation",  # a timestamp without a timezone, in strict mode
    ),
]


@pytest.mark.parametrize(("frame", "message_id", "code"), CASES)
async def test_malformed_frame_gets_callerror_and_connection_survives(
    csms: CsmsApp, frame: str, message_id: str, code: str
) -> None:
    client = await open_client(csms)
    await client.send_raw(frame)
    answer = await client.recv_json()
    assert answer[0] == 4, answer
    assert answer[1] == message_id
    assert answer[2] == code, answer
    assert isinstance(answer[3], str) and answer[3]
    assert isinstance(answer[4], dict)
    # the same connection still serves a valid request
    ok = await client.call("Heartbeat", {})
    assert ok[0] == 3 and "currentTime" in ok[2]
    await client.ws.close()


async def test_binary_garbage_gets_rpc_framework_error(csms: CsmsApp) -> None:
    client = await open_client(csms)
    await client.ws.send(b"\xff\xfe\x00")
    answer = await client.recv_json()
    assert answer[:3] == [4, "-1", "RpcFrameworkError"]
    assert (await client.call("Heartbeat", {}))[0] == 3
    await client.ws.close()


async def test_stray_result_gets_no_answer_and_is_harmless(csms: CsmsApp) -> None:
    client = await open_client(csms)
    await client.send_raw('[3, "nobody-asked", {}]')
    answer = await client.call("Heartbeat", {})
    assert answer[0] == 3  # the next frame read is the heartbeat's answer, not an error
    await client.ws.close()


async def test_one_station_sending_garbage_does_not_disturb_another(csms: CsmsApp) -> None:
    from csms.passwords import hash_password

    await csms.store.add_station("CS-OTHER", hash_password("another password"), "2026-01-01")
    noisy = await open_client(csms)
    calm = await open_client(csms, "CS-OTHER", "another password")
    for _ in range(20):
        await noisy.send_raw("garbage")
    assert (await calm.call("Heartbeat", {}))[0] == 3
    for _ in range(20):
        assert (await noisy.recv_json())[2] == "RpcFrameworkError"
    await noisy.ws.close()
    await calm.ws.close()
