"""Frame-level limits over a real socket: number size and nesting depth are answered with a
CALLERROR naming the limit, lone surrogates are FormatViolation (also as the message id,
without dropping the connection), and a broken CALLRESULT or CALLERROR gets no reply."""

from __future__ import annotations

import asyncio

import pytest

from csms.app import CsmsApp
from csms.ocpp.frames import MAX_DEPTH, MAX_NUMBER_CHARS
from tests.csms.conftest import open_client


async def heartbeat_still_answered(client: object) -> None:
    answer = await client.call("Heartbeat", {})  # type: ignore[attr-defined]
    assert answer[0] == 3, answer


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ('[2,"n1","Heartbeat",{"x":' + "1" * 5000 + "}]", f"{MAX_NUMBER_CHARS} characters"),
        ('[2,"n2","Heartbeat",{"x":' + "[" * 990 + "]" * 990 + "}]", f"{MAX_DEPTH} levels"),
        ('[2,"n3","Heartbeat",{"x":' + "[" * 40 + "]" * 40 + "}]", f"{MAX_DEPTH} levels"),
    ],
)
async def test_number_and_nesting_limits_are_named(csms: CsmsApp, frame: str, words: str) -> None:
    client = await open_client(csms)
    await client.send_raw(frame)
    answer = await client.recv_json()
    assert answer[0] == 4 and answer[1] == frame[4:6] and answer[2] == "FormatViolation", answer
    assert words in answer[3] and "limit" in answer[3]
    await heartbeat_still_answered(client)
    await client.ws.close()


async def test_lone_surrogates_are_a_format_violation(csms: CsmsApp) -> None:
    client = await open_client(csms)
    await client.send_raw('[2,"s1","Authorize",{"idToken":{"idToken":"\\ud800","type":"Central"}}]')
    answer = await client.recv_json()
    assert answer[:3] == [4, "s1", "FormatViolation"], answer
    await client.send_raw('[2,"\\ud800","Heartbeat",{}]')  # as the message id
    answer = await client.recv_json()
    assert answer[:3] == [4, "-1", "FormatViolation"], answer
    await heartbeat_still_answered(client)
    await client.ws.close()


@pytest.mark.parametrize("frame", ['[3,"x"]', '[4,"x"]', '[3,"x",[]]', '[4,"x",1,2,3]'])
async def test_broken_responses_get_no_reply(csms: CsmsApp, frame: str) -> None:
    client = await open_client(csms)
    await client.send_raw(frame)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.ws.recv(), 0.5)
    await heartbeat_still_answered(client)
    await client.ws.close()


@pytest.mark.parametrize("frame", ["[3.0]", '[4.0,"x"]', '[3.0,"x",{}]'])
async def test_a_float_message_type_is_no_response_and_gets_an_error(
    csms: CsmsApp, frame: str
) -> None:
    client = await open_client(csms)
    await client.send_raw(frame)
    answer = await asyncio.wait_for(client.recv_json(), 5)
    assert answer[0] == 4 and answer[2] in ("RpcFrameworkError", "FormatViolation"), answer
    await heartbeat_still_answered(client)
    await client.ws.close()
