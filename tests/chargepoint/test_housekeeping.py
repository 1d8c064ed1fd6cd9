"""The simulated station answers DataTransfer, ClearCache, GetLocalListVersion,
GetTransactionStatus and UnlockConnector with schema-valid, specification answers."""

from __future__ import annotations

from typing import Any

import pytest

from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import OCPP201
from tests.chargepoint.test_client import csms_call, start_client

SCHEMAS = SchemaSet(OCPP201)


@pytest.mark.parametrize(
    ("action", "payload", "answer"),
    [
        (
            "DataTransfer",
            {"vendorId": "com.example", "messageId": "x"},
            {"status": "UnknownVendorId"},
        ),
        ("ClearCache", {}, {"status": "Accepted"}),
        ("GetLocalListVersion", {}, {"versionNumber": 0}),
        ("GetTransactionStatus", {}, {"messagesInQueue": False}),
        (
            "GetTransactionStatus",
            {"transactionId": "not-running"},
            {"messagesInQueue": False, "ongoingIndicator": False},
        ),
        ("UnlockConnector", {"evseId": 1, "connectorId": 1}, {"status": "Unlocked"}),
        ("UnlockConnector", {"evseId": 9, "connectorId": 1}, {"status": "UnknownConnector"}),
    ],
)
async def test_the_station_answers_as_the_specification_says(
    action: str, payload: dict[str, Any], answer: dict[str, Any]
) -> None:
    _client, conn, task = await start_client()
    try:
        frame = await csms_call(conn, action, payload)
    finally:
        task.cancel()
    assert frame[0] == 3, frame  # a CALLRESULT, not NotImplemented
    assert frame[2] == answer
    SCHEMAS.validate_response(action, frame[2])
