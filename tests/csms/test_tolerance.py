"""Tolerance of real-hardware habits: the pure fix-ups, the Dispatcher step, and a table of
habits (REAL_HARDWARE.md) sent over a real socket by a strict and by a tolerant station."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from csms.app import CsmsApp
from csms.ocpp.frames import CallError
from csms.ocpp.rpc import Dispatcher
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.tolerance import Deviation, RequestSchemas, canonical_error_code, tolerate
from csms.ocpp.versions import OCPP21, OCPP201
from tests.csms.builders import transaction_event
from tests.csms.conftest import BOOT, STATION, open_client

SCHEMAS_201 = RequestSchemas(OCPP201)


def schema(action: str) -> dict[str, Any]:
    found = SCHEMAS_201.get(action)
    assert found is not None
    return found


def kinds(deviations: list[Deviation]) -> list[str]:
    return [d.kind for d in deviations]


# -- the pure fix-ups ---------------------------------------------------------------------


def test_valid_payload_is_returned_unchanged_with_no_deviation() -> None:
    payload = transaction_event("Started", 0, import_wh=100)
    fixed, deviations = tolerate(payload, schema("TransactionEvent"))
    assert deviations == []
    assert fixed == payload


def test_fixes_do_not_mutate_the_input() -> None:
    payload = {"chargingStation": {"model": "M" * 30, "vendorName": "V"}, "reason": "powerup"}
    fixed, deviations = tolerate(payload, schema("BootNotification"))
    assert payload["chargingStation"]["model"] == "M" * 30 and payload["reason"] == "powerup"
    assert fixed["chargingStation"]["model"] == "M" * 20
    assert fixed["reason"] == "PowerUp"
    assert sorted(kinds(deviations)) == ["enum", "truncated"]
    truncated = next(d for d in deviations if d.kind == "truncated")
    assert truncated.path == "chargingStation/model"


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("kwh", "kWh"), ("KWH", "kWh"), ("wh", "Wh"), (" kWH ", "kWh"), ("%", "Percent")],
)
def test_odd_unit_spellings_are_normalised(unit: str, expected: str) -> None:
    payload = transaction_event("Started", 0, import_wh=1)
    payload["meterValue"][0]["sampledValue"][0]["unitOfMeasure"] = {"unit": unit}
    fixed, deviations = tolerate(payload, schema("TransactionEvent"))
    assert fixed["meterValue"][0]["sampledValue"][0]["unitOfMeasure"]["unit"] == expected
    assert kinds(deviations) == ["unit"]


def test_an_unknown_unit_is_left_alone() -> None:
    payload = transaction_event("Started", 0, import_wh=1)
    payload["meterValue"][0]["sampledValue"][0]["unitOfMeasure"] = {"unit": "furlong"}
    assert tolerate(payload, schema("TransactionEvent"))[1] == []


def test_timestamp_without_zone_is_taken_as_utc_and_zoned_ones_are_kept() -> None:
    payload = transaction_event("Started", 0, timestamp="2026-11-25T10:00:00")
    fixed, deviations = tolerate(payload, schema("TransactionEvent"))
    assert fixed["timestamp"] == "2026-11-25T10:00:00Z"
    assert kinds(deviations) == ["timezone"]
    for zoned in ("2026-11-25T10:00:00+01:00", "2026-11-25T10:00:00.5Z", "not a time"):
        payload = transaction_event("Started", 0, timestamp=zoned)
        assert tolerate(payload, schema("TransactionEvent"))[0]["timestamp"] == zoned


def test_unknown_optional_enum_is_dropped_but_a_required_one_is_kept() -> None:
    payload = transaction_event("Started", 0, import_wh=1)
    payload["meterValue"][0]["sampledValue"][0]["location"] = "Socket"
    payload["triggerReason"] = "Whatever"
    fixed, deviations = tolerate(payload, schema("TransactionEvent"))
    assert "location" not in fixed["meterValue"][0]["sampledValue"][0]
    assert fixed["triggerReason"] == "Whatever"
    assert kinds(deviations) == ["enum_dropped"]


def test_known_misspelling_and_case_are_mapped() -> None:
    payload = {
        "timestamp": "2026-11-25T10:00:00Z",
        "connectorStatus": "available",
        "evseId": 1,
        "connectorId": 1,
    }
    fixed, _ = tolerate(payload, schema("StatusNotification"))
    assert fixed["connectorStatus"] == "Available"
    sample = transaction_event("Started", 0, import_wh=1)
    sample["meterValue"][0]["sampledValue"][0]["measurand"] = "Energy.Active.Import"
    fixed, _ = tolerate(sample, schema("TransactionEvent"))
    assert fixed["meterValue"][0]["sampledValue"][0]["measurand"] == (
        "Energy.Active.Import.Register"
    )


def test_scalars_of_the_wrong_json_type_are_converted_when_unambiguous() -> None:
    payload = transaction_event("Started", 0, import_wh=1, offline=True)
    payload["seqNo"] = "7"
    payload["offline"] = "TRUE"
    payload["meterValue"][0]["sampledValue"][0]["value"] = "1.5"
    payload["meterValue"][0]["sampledValue"][0]["unitOfMeasure"]["multiplier"] = "3"
    fixed, deviations = tolerate(payload, schema("TransactionEvent"))
    assert fixed["seqNo"] == 7 and fixed["offline"] is True
    sampled = fixed["meterValue"][0]["sampledValue"][0]
    assert sampled["value"] == 1.5 and sampled["unitOfMeasure"]["multiplier"] == 3
    assert sorted(kinds(deviations)) == [
        "boolean_from_string",
        "number_from_string",
        "number_from_string",
        "number_from_string",
    ]
    payload["seqNo"] = "seven"
    assert tolerate(payload, schema("TransactionEvent"))[0]["seqNo"] == "seven"


def test_signed_meter_data_is_never_truncated() -> None:
    payload = transaction_event("Started", 0, import_wh=1)
    signed = {
        "signedMeterData": "A" * 3000,
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": "",
    }
    payload["meterValue"][0]["sampledValue"][0]["signedMeterValue"] = signed
    fixed, deviations = tolerate(payload, schema("TransactionEvent"))
    assert fixed["meterValue"][0]["sampledValue"][0]["signedMeterValue"] == signed
    assert deviations == []


def test_odd_shapes_do_not_crash() -> None:
    for payload in ({"meterValue": "x"}, {"meterValue": [1, None, []]}, {"evse": []}, {}):
        fixed, _ = tolerate(payload, schema("TransactionEvent"))
        assert isinstance(fixed, dict)
    assert SCHEMAS_201.get("../../etc/passwd") is None
    assert SCHEMAS_201.get("NoSuchAction") is None


def test_error_code_spellings() -> None:
    assert canonical_error_code("OccurenceConstraintViolation") == "OccurrenceConstraintViolation"
    assert canonical_error_code("FormationViolation") == "FormatViolation"
    assert canonical_error_code("GenericError") == "GenericError"


# -- the Dispatcher step ------------------------------------------------------------------


async def echo(ctx: None, payload: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": "2026-11-25T10:00:00Z", "interval": 1, "status": "Accepted"}


def dispatcher(*, tolerant: bool, version: Any = OCPP201) -> Dispatcher[None]:
    return Dispatcher(
        version=version,
        handlers={"BootNotification": echo},
        schemas=SchemaSet(version),
        tolerance=RequestSchemas(version),
        tolerant=tolerant,
    )


async def test_misspelled_callerror_code_is_canonical_and_counted_only_off_its_version() -> None:
    frame = '[4,"m1","OccurenceConstraintViolation","missing",{}]'
    on_201 = dispatcher(tolerant=False)
    inbound = await on_201.handle(None, frame)
    assert isinstance(inbound.response, CallError)
    assert inbound.response.code == "OccurrenceConstraintViolation"
    assert on_201.deviations == {}  # 2.0.1's own spelling is no deviation
    on_21 = dispatcher(tolerant=False, version=OCPP21)
    inbound = await on_21.handle(None, frame)
    assert isinstance(inbound.response, CallError)
    assert inbound.response.code == "OccurrenceConstraintViolation"
    assert on_21.deviations == {"error_code": 1}


async def test_tolerant_dispatcher_logs_each_repair_with_the_station(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boot = {"chargingStation": {"model": "M" * 21, "vendorName": "V"}, "reason": "powerUp"}
    tolerant = dispatcher(tolerant=True)
    with caplog.at_level(logging.WARNING, logger="csms.ocpp.rpc"):
        inbound = await tolerant.handle(
            None, f'[2,"m1","BootNotification",{_json(boot)}]', station_id="CS-LOG"
        )
    assert inbound.reply is not None and inbound.reply.startswith("[3,")
    assert tolerant.deviations == {"truncated": 1, "enum": 1}
    lines = [r.getMessage() for r in caplog.records if "tolerated" in r.getMessage()]
    assert len(lines) == 2 and all(line.startswith("CS-LOG:") for line in lines)
    strict = dispatcher(tolerant=False)
    inbound = await strict.handle(None, f'[2,"m1","BootNotification",{_json(boot)}]')
    assert inbound.reply is not None and inbound.error_code == "PropertyConstraintViolation"
    assert strict.deviations == {}


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# -- the habits table, over a real socket -------------------------------------------------


@dataclass(frozen=True)
class Habit:
    name: str
    action: str
    payload: dict[str, Any]
    strict_error: str  # the CALLERROR code a strict station gets (as 2.0.1 spells it)
    check: Callable[[CsmsApp], Awaitable[None]]  # what the tolerant station's data look like
    kinds: tuple[str, ...]


def _event_with(**changes: Any) -> dict[str, Any]:
    payload = transaction_event("Started", 0, import_wh=1.5)
    sampled = payload["meterValue"][0]["sampledValue"][0]
    for key, value in changes.items():
        if key == "unit":
            sampled["unitOfMeasure"] = value
        elif key in ("location", "measurand", "value"):
            sampled[key] = value
        else:
            payload[key] = value
    return payload


async def _import_wh(app: CsmsApp, expected: int) -> None:
    session = await app.store.get_session(STATION, "tx-1")
    assert session is not None
    samples = await app.store.meter_samples(STATION, "tx-1")
    imports = [s for s in samples if s.measurand == "Energy.Active.Import.Register"]
    assert [(s.value, s.unit) for s in imports] == [(expected, "Wh")]


async def _started_at(app: CsmsApp) -> None:
    session = await app.store.get_session(STATION, "tx-1")
    assert session is not None and session.started_at == "2026-11-25T10:00:00.000Z"


async def _serial_cut(app: CsmsApp) -> None:
    station = await app.store.get_station(STATION)
    assert station is not None and station.serial_number == "S" * 25


async def _status_available(app: CsmsApp) -> None:
    assert await app.store.connector_statuses(STATION) == {(1, 1): "Available"}


async def _location_dropped(app: CsmsApp) -> None:
    samples = await app.store.meter_samples(STATION, "tx-1")
    assert samples and all(s.location is None for s in samples)


HABITS = [
    Habit(
        "kWh spelled kwh",
        "TransactionEvent",
        _event_with(unit={"unit": "kwh"}),
        "PropertyConstraintViolation",
        lambda app: _import_wh(app, 1500),
        ("unit",),
    ),
    Habit(
        "KWH with a string multiplier",
        "TransactionEvent",
        _event_with(unit={"unit": "WH", "multiplier": "3"}),
        "PropertyConstraintViolation",  # the unit is refused before the schema runs
        lambda app: _import_wh(app, 1500),
        ("unit", "number_from_string"),
    ),
    Habit(
        "timestamp without timezone",
        "TransactionEvent",
        _event_with(timestamp="2026-11-25T10:00:00"),
        "PropertyConstraintViolation",
        _started_at,
        ("timezone",),
    ),
    Habit(
        "serial number too long",
        "BootNotification",
        {**BOOT, "chargingStation": {**BOOT["chargingStation"], "serialNumber": "S" * 40}},
        "PropertyConstraintViolation",
        _serial_cut,
        ("truncated",),
    ),
    Habit(
        "enum in lowercase",
        "StatusNotification",
        {
            "timestamp": "2026-11-25T10:00:00Z",
            "connectorStatus": "available",
            "evseId": 1,
            "connectorId": 1,
        },
        "PropertyConstraintViolation",
        _status_available,
        ("enum",),
    ),
    Habit(
        "unknown value of an optional enum",
        "TransactionEvent",
        _event_with(location="Socket"),
        "PropertyConstraintViolation",
        _location_dropped,
        ("enum_dropped",),
    ),
    Habit(
        "measurand without .Register",
        "TransactionEvent",
        _event_with(measurand="Energy.Active.Import"),
        "PropertyConstraintViolation",
        lambda app: _import_wh(app, 2),
        ("enum",),
    ),
    Habit(
        "seqNo as a string",
        "TransactionEvent",
        _event_with(seqNo="0"),
        "TypeConstraintViolation",
        lambda app: _import_wh(app, 2),
        ("number_from_string",),
    ),
]


@pytest.mark.parametrize("habit", HABITS, ids=[h.name for h in HABITS])
async def test_habit_is_a_clear_callerror_for_a_strict_station(csms: CsmsApp, habit: Habit) -> None:
    client = await open_client(csms)
    answer = await client.call(habit.action, habit.payload)
    assert answer[0] == 4, answer
    assert answer[2] == habit.strict_error
    assert answer[3]  # a description saying what is wrong
    assert csms.server.tolerated.get(STATION, {}) == {}
    assert await csms.store.list_sessions(STATION) == []
    await client.ws.close()


@pytest.mark.parametrize("habit", HABITS, ids=[h.name for h in HABITS])
async def test_habit_is_repaired_logged_and_counted_for_a_tolerant_station(
    csms: CsmsApp, habit: Habit, caplog: pytest.LogCaptureFixture
) -> None:
    await csms.store.set_tolerance(STATION, "tolerant")
    client = await open_client(csms)
    with caplog.at_level(logging.WARNING, logger="csms.ocpp.rpc"):
        answer = await client.call(habit.action, habit.payload)
    assert answer[0] == 3, answer
    await habit.check(csms)
    counted = csms.server.tolerated[STATION]
    assert sorted(counted.elements()) == sorted(habit.kinds)
    logged = [r.getMessage() for r in caplog.records if "tolerated" in r.getMessage()]
    assert len(logged) == len(habit.kinds)
    assert all(STATION in line for line in logged)
    await client.ws.close()


async def test_required_enum_outside_the_spec_stays_an_error_when_tolerant(
    csms: CsmsApp,
) -> None:
    await csms.store.set_tolerance(STATION, "tolerant")
    client = await open_client(csms)
    answer = await client.call(
        "StatusNotification",
        {
            "timestamp": "2026-11-25T10:00:00Z",
            "connectorStatus": "Broken",
            "evseId": 1,
            "connectorId": 1,
        },
    )
    assert answer[0] == 4 and answer[2] == "PropertyConstraintViolation"
    assert await csms.store.connector_statuses(STATION) == {}
    await client.ws.close()


def test_numbers_become_strings_only_in_plain_text_fields() -> None:
    payload = {
        "timestamp": 187876,
        "connectorStatus": 3,
        "evseId": 1,
        "connectorId": 1,
    }
    fixed, deviations = tolerate(payload, schema("StatusNotification"))
    assert fixed["timestamp"] == 187876 and fixed["connectorStatus"] == 3
    assert deviations == []
    boot = {"chargingStation": {"model": 42, "vendorName": "V"}, "reason": "PowerUp"}
    fixed, deviations = tolerate(boot, schema("BootNotification"))
    assert fixed["chargingStation"]["model"] == "42"
    assert kinds(deviations) == ["string_from_number"]


# -- the same habits from an OCPP 1.6J station --------------------------------------------

BOOT_16 = {
    "chargePointVendor": "Vendor",
    "chargePointModel": "Model",
    "chargePointSerialNumber": "S" * 40,
}
STATUS_16 = {"connectorId": 1, "errorCode": "noError", "status": "available"}
METER_16 = {
    "connectorId": 1,
    "meterValue": [
        {
            "timestamp": "2026-11-25T10:00:00",
            "sampledValue": [
                {"value": "1.5", "unit": "kwh", "measurand": "Energy.Active.Import.Register"}
            ],
        }
    ],
}
CODES_16 = {
    "PropertyConstraintViolation",
    "TypeConstraintViolation",
    "OccurenceConstraintViolation",
    "FormationViolation",
}


@pytest.mark.parametrize("tolerance", ["strict", "tolerant"])
async def test_habits_of_a_16_station(csms: CsmsApp, tolerance: str) -> None:
    await csms.store.set_tolerance(STATION, tolerance)
    client = await open_client(csms, subprotocols=["ocpp1.6"])
    answers = [
        await client.call("BootNotification", BOOT_16),
        await client.call("StatusNotification", STATUS_16),
        await client.call("MeterValues", METER_16),
    ]
    await client.ws.close()
    station = await csms.store.get_station(STATION)
    assert station is not None
    if tolerance == "strict":
        assert [a[0] for a in answers] == [4, 4, 4]
        assert {a[2] for a in answers} <= CODES_16  # spelled the 1.6 way
        assert station.serial_number is None
        assert await csms.store.connector_statuses(STATION) == {}
        return
    assert [a[0] for a in answers] == [3, 3, 3], answers
    assert answers[0][2]["status"] == "Accepted"
    assert station.serial_number == "S" * 25
    assert await csms.store.connector_statuses(STATION) == {(1, 1): "Available"}
    assert csms.server.tolerated[STATION] == {"truncated": 1, "enum": 3, "timezone": 1}


def test_unset_station_clock_is_replaced_by_the_time_of_receipt() -> None:
    from datetime import UTC, datetime

    received = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
    payload = transaction_event("Started", 0, timestamp="1970-01-01T00:00:05")
    fixed, deviations = tolerate(payload, schema("TransactionEvent"), now=received)
    assert fixed["timestamp"] == "2026-11-25T12:30:00.000Z"
    assert kinds(deviations) == ["timezone", "clock_unset"]
    assert deviations[1].before == "1970-01-01T00:00:05Z"
    without_clock, deviations = tolerate(payload, schema("TransactionEvent"))
    assert without_clock["timestamp"] == "1970-01-01T00:00:05Z"
    recent = transaction_event("Started", 0, timestamp="2001-01-01T00:00:00Z")
    assert tolerate(recent, schema("TransactionEvent"), now=received)[1] == []


@pytest.mark.parametrize("tolerance", ["strict", "tolerant"])
async def test_unset_station_clock_over_the_wire(csms: CsmsApp, tolerance: str) -> None:
    await csms.store.set_tolerance(STATION, tolerance)
    client = await open_client(csms)
    payload = transaction_event("Started", 0, timestamp="1970-01-01T00:00:00Z", import_wh=1)
    answer = await client.call("TransactionEvent", payload)
    await client.ws.close()
    assert answer[0] == 3  # schema-valid: strict mode keeps it as sent
    session = await csms.store.get_session(STATION, "tx-1")
    assert session is not None and session.started_at is not None
    if tolerance == "strict":
        assert session.started_at.startswith("1970-01-01")
        assert csms.server.tolerated.get(STATION, {}) == {}
    else:
        assert session.started_at >= "2026"
        assert csms.server.tolerated[STATION] == {"clock_unset": 2}  # event and its reading
