from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, validate_payload

from chargepoint.device_model import DeviceModel, default_variables
from chargepoint.metering import MeterReading, ReadingContext, SignedMeterValue
from chargepoint.payloads import notify_report_calls, transaction_event_call
from chargepoint.transaction import (
    EventType,
    IdToken,
    TriggerReason,
    TxEvent,
    sample_reading,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, 987654, tzinfo=UTC)


def validate(action: str, payload: object) -> dict:
    body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
    asyncio.run(validate_payload(Call("x", action, body), "2.0.1"))
    return body


def test_notify_report_pages_are_numbered_and_flag_more_to_come() -> None:
    dm = DeviceModel(default_variables(station_id="CP1", evse_count=1))
    variables = dm.report("FullInventory")
    assert variables is not None
    pages = notify_report_calls(request_id=7, now=T0, variables=variables, per_message=5)
    assert len(pages) == -(-len(variables) // 5)
    assert [p.seq_no for p in pages] == list(range(len(pages)))
    assert [p.tbc for p in pages] == [True] * (len(pages) - 1) + [False]
    bodies = [validate("NotifyReport", p) for p in pages]
    items = [item for body in bodies for item in body["reportData"]]
    assert len(items) == len(variables)
    password = next(i for i in items if i["variable"]["name"] == "BasicAuthPassword")
    assert "value" not in password["variableAttribute"][0]
    assert bodies[0]["generatedAt"] == "2026-01-01T12:00:00.987Z"


def test_transaction_event_with_signed_value_is_schema_valid() -> None:
    signed = SignedMeterValue("T0NNRnx7fXx7fQ==", "", "OCMF", "b2NhOmJhc2UxNg==")
    reading = MeterReading(import_wh=1234, export_wh=56, power_w=-3700, soc=61, signed=signed)
    sample = sample_reading(
        reading,
        now=T0,
        context=ReadingContext.TRANSACTION_BEGIN,
        measurands=("Energy.Active.Import.Register", "Energy.Active.Export.Register", "SoC"),
    )
    event = TxEvent(
        EventType.STARTED,
        T0,
        TriggerReason.AUTHORIZED,
        0,
        "tx-1",
        2,
        1,
        id_token=IdToken("04AA", "ISO14443"),
        meter=(sample,),
        offline=True,
    )
    body = validate("TransactionEvent", transaction_event_call(event))
    assert body["offline"] is True
    assert body["evse"] == {"id": 2, "connectorId": 1}
    values = body["meterValue"][0]["sampledValue"]
    assert values[0]["signedMeterValue"]["encodingMethod"] == "OCMF"
    assert values[0]["value"] == 1234 and values[0]["unitOfMeasure"] == {"unit": "Wh"}
    assert values[2] == {
        "value": 61,
        "context": "Transaction.Begin",
        "measurand": "SoC",
        "unitOfMeasure": {"unit": "Percent"},
    }
    assert body["timestamp"] == "2026-01-01T12:00:00.987Z"
