"""OCPP 1.6J over real sockets, against an independent strict 1.6 station.

The station is the ``ocpp`` library's ``ocpp.v16.ChargePoint``: it validates every payload both
ways against the official 1.6 schemas. A whole session runs through it and must end in a
session row whose energy is the register deltas the station reported; resends change nothing;
every 1.6 CSMS-initiated call of the service API is answered by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result

from csms.app import CsmsApp
from csms.blocks16.remote import set_charging_profile_request_16
from csms.dispatch import Decision
from csms.model import TokenRecord
from csms.service import VariableRef
from csms.store.ocpp16 import Ocpp16Store
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station

TAG = "TAG16-ACCEPTED"
T_BEGIN = "2026-11-25T10:00:00.000Z"
T_MID = "2026-11-25T10:30:00.000Z"
T_END = "2026-11-25T11:00:00.000Z"


@pytest.fixture
def csms_database(database: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database


class Station16(ChargePoint):
    """Answers every 1.6 CSMS-initiated call and remembers what it was asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, dict[str, Any]]] = []

    @on("RemoteStartTransaction")
    async def on_remote_start(self, **kwargs: Any) -> Any:
        self.asked.append(("RemoteStartTransaction", kwargs))
        return call_result.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    async def on_remote_stop(self, **kwargs: Any) -> Any:
        self.asked.append(("RemoteStopTransaction", kwargs))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on("ChangeConfiguration")
    async def on_change_configuration(self, **kwargs: Any) -> Any:
        self.asked.append(("ChangeConfiguration", kwargs))
        return call_result.ChangeConfiguration(status="RebootRequired")

    @on("GetConfiguration")
    async def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        self.asked.append(("GetConfiguration", {"key": key}))
        known = {"HeartbeatInterval": "300"}
        keys = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": False, "value": known[k]} for k in keys if k in known
            ],
            unknown_key=[k for k in keys if k not in known],
        )

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, **kwargs: Any) -> Any:
        self.asked.append(("SetChargingProfile", kwargs))
        return call_result.SetChargingProfile(status="Accepted")

    @on("Reset")
    async def on_reset(self, **kwargs: Any) -> Any:
        self.asked.append(("Reset", kwargs))
        return call_result.Reset(status="Accepted")

    @on("TriggerMessage")
    async def on_trigger_message(self, **kwargs: Any) -> Any:
        self.asked.append(("TriggerMessage", kwargs))
        return call_result.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")
    async def on_change_availability(self, **kwargs: Any) -> Any:
        self.asked.append(("ChangeAvailability", kwargs))
        return call_result.ChangeAvailability(status="Scheduled")


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station16]:
    await csms.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, T_BEGIN))
    async with library_station(csms, Station16, ["ocpp1.6"], "ocpp1.6") as cp:
        yield cp


def reading(
    timestamp: str, import_value: str, export_value: str, context: str, unit: str = "Wh"
) -> dict[str, Any]:
    """One 1.6 meterValue with both energy registers (string values, as 1.6 sends them)."""
    return {
        "timestamp": timestamp,
        "sampled_value": [
            {
                "value": import_value,
                "measurand": "Energy.Active.Import.Register",
                "context": context,
                "unit": unit,
            },
            {
                "value": export_value,
                "measurand": "Energy.Active.Export.Register",
                "context": context,
                "unit": unit,
            },
            {"value": "7200", "measurand": "Power.Active.Import", "context": context, "unit": "W"},
        ],
    }


async def test_core_messages_are_answered_and_recorded(csms: CsmsApp, station: Station16) -> None:
    boot = await station.call(
        call.BootNotification(
            charge_point_model="Wallbox-16",
            charge_point_vendor="Vendor16",
            charge_box_serial_number="SN-16",
            firmware_version="1.2.3",
        )
    )
    assert boot.status == "Accepted"
    assert boot.interval == csms.server.services.config.heartbeat_interval
    record = await csms.store.get_station(STATION)
    assert record is not None
    assert (record.vendor, record.model, record.serial_number, record.firmware) == (
        "Vendor16",
        "Wallbox-16",
        "SN-16",
        "1.2.3",
    )
    heartbeat = await station.call(call.Heartbeat())
    assert heartbeat.current_time.endswith("Z")
    await station.call(
        call.StatusNotification(connector_id=0, error_code="NoError", status="Available")
    )
    await station.call(
        call.StatusNotification(
            connector_id=2, error_code="NoError", status="Preparing", timestamp=T_BEGIN
        )
    )
    statuses = await csms.store.connector_statuses(STATION)
    assert statuses == {(0, 0): "Available", (2, 1): "Preparing"}
    accepted = await station.call(call.Authorize(id_tag=TAG))
    assert accepted.id_tag_info == {"status": "Accepted"}
    unknown = await station.call(call.Authorize(id_tag="NOBODY"))
    assert unknown.id_tag_info == {"status": "Invalid"}
    transfer = await station.call(call.DataTransfer(vendor_id="com.example", message_id="x"))
    assert transfer.status == "UnknownVendorId"


async def test_a_session_ends_with_energy_from_register_deltas(
    csms: CsmsApp, station: Station16
) -> None:
    start = await station.call(
        call.StartTransaction(connector_id=1, id_tag=TAG, meter_start=1_000, timestamp=T_BEGIN)
    )
    assert start.id_tag_info["status"] == "Accepted"
    transaction_id = start.transaction_id
    assert isinstance(transaction_id, int)
    # The same StartTransaction again (its answer was lost): same id, nothing new.
    again = await station.call(
        call.StartTransaction(connector_id=1, id_tag=TAG, meter_start=1_000, timestamp=T_BEGIN)
    )
    assert again.transaction_id == transaction_id
    middle = call.MeterValues(
        connector_id=1,
        transaction_id=transaction_id,
        meter_value=[reading(T_MID, "1.6", "0.15", "Sample.Periodic", unit="kWh")],
    )
    await station.call(middle)
    await station.call(middle)  # resent: must not count twice
    stop = call.StopTransaction(
        transaction_id=transaction_id,
        meter_stop=2_500,
        timestamp=T_END,
        id_tag=TAG,
        reason="EVDisconnected",
        transaction_data=[
            reading(T_BEGIN, "1000", "100", "Transaction.Begin"),
            reading(T_END, "2.5", "0.4", "Transaction.End", unit="kWh"),
        ],
    )
    stopped = await station.call(stop)
    assert stopped.id_tag_info == {"status": "Accepted"}
    await station.call(stop)  # a duplicate Stop after a reboot
    late = call.MeterValues(
        connector_id=1,
        transaction_id=transaction_id,
        meter_value=[reading(T_END, "9000", "900", "Sample.Periodic")],
    )
    await station.call(late)  # after the stop: the closed session must not move

    session = await csms.store.get_session(STATION, str(transaction_id))
    assert session is not None
    assert session.state == "ended"
    assert session.started_seen
    assert (session.evse_id, session.connector_id) == (1, 1)
    assert (session.id_token, session.id_token_type) == (TAG, "ISO14443")
    assert session.stopped_reason == "EVDisconnected"
    assert session.event_count == 3  # Started, one Updated, Ended
    assert session.last_seq_no == 2
    assert session.import_wh == 2_500 - 1_000
    assert session.export_wh == 400 - 100
    events = await csms.store.transaction_events(STATION, str(transaction_id))
    assert [(e["seq_no"], e["event_type"]) for e in events] == [
        (0, "Started"),
        (1, "Updated"),
        (2, "Ended"),
    ]


async def test_stop_without_transaction_data_uses_meter_stop(
    csms: CsmsApp, station: Station16
) -> None:
    start = await station.call(
        call.StartTransaction(connector_id=2, id_tag=TAG, meter_start=52_000, timestamp=T_BEGIN)
    )
    await station.call(
        call.StopTransaction(
            transaction_id=start.transaction_id, meter_stop=59_250, timestamp=T_END
        )
    )
    session = await csms.store.get_session(STATION, str(start.transaction_id))
    assert session is not None and session.state == "ended"
    assert session.import_wh == 59_250 - 52_000
    assert session.stopped_reason == "Local"  # 1.6's default reason


async def test_stop_of_an_unknown_transaction_is_acknowledged(
    csms: CsmsApp, station: Station16
) -> None:
    answer = await station.call(
        call.StopTransaction(transaction_id=987_654, meter_stop=10, timestamp=T_END)
    )
    assert answer.id_tag_info is None
    session = await csms.store.get_session(STATION, "987654")
    assert session is not None
    assert session.state == "ended" and not session.started_seen


async def test_every_16_csms_initiated_call_is_answered(csms: CsmsApp, station: Station16) -> None:
    service = csms.stations
    assert service.ocpp_version(STATION) == "ocpp1.6"
    started = await service.request_start_transaction(STATION, TAG, evse_id=2)
    assert started == {"status": "Accepted"}
    stopped = await service.request_stop_transaction(STATION, "41")
    assert stopped == {"status": "Accepted"}
    changed = await service.change_configuration(STATION, "MeterValueSampleInterval", "60")
    assert changed == {"status": "RebootRequired"}
    config = await service.get_configuration(STATION, ["HeartbeatInterval", "NoSuchKey"])
    assert config == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknownKey": ["NoSuchKey"],
    }
    request = set_charging_profile_request_16(
        Decision("charge", 7_400),
        connector_id=1,
        transaction_id="41",
        profile_id=5,
        start=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    )
    assert await service.set_charging_profile(STATION, request) == {"status": "Accepted"}
    assert await service.reset(STATION) == {"status": "Accepted"}
    assert await service.trigger_message(STATION, "StatusNotification", evse_id=1) == {
        "status": "Accepted"
    }
    assert await service.change_availability(STATION, "Inoperative", evse_id=2) == {
        "status": "Scheduled"
    }
    asked = dict(station.asked)
    assert asked["RemoteStartTransaction"] == {"id_tag": TAG, "connector_id": 2}
    assert asked["RemoteStopTransaction"] == {"transaction_id": 41}
    assert asked["ChangeConfiguration"] == {"key": "MeterValueSampleInterval", "value": "60"}
    assert asked["GetConfiguration"] == {"key": ["HeartbeatInterval", "NoSuchKey"]}
    profile = asked["SetChargingProfile"]["cs_charging_profiles"]
    assert profile["transaction_id"] == 41
    assert profile["charging_schedule"]["charging_schedule_period"] == [
        {"start_period": 0, "limit": 7400}
    ]
    assert asked["Reset"] == {"type": "Hard"}
    assert asked["TriggerMessage"] == {"requested_message": "StatusNotification", "connector_id": 1}
    assert asked["ChangeAvailability"] == {"connector_id": 2, "type": "Inoperative"}


async def test_operations_a_16_station_lacks_are_refused_before_sending(
    csms: CsmsApp, station: Station16
) -> None:
    service = csms.stations
    with pytest.raises(ValueError, match="GetVariables"):
        await service.get_variables(STATION, [VariableRef("OCPPCommCtrlr", "HeartbeatInterval")])
    with pytest.raises(ValueError, match="NotifyAllowedEnergyTransfer"):
        await service.notify_allowed_energy_transfer(STATION, "41", ["AC_BPT"])
    with pytest.raises(ValueError, match="transactionId"):
        await service.request_stop_transaction(STATION, "tx-from-elsewhere")
    with pytest.raises(ValueError, match="one EVSE"):
        await service.reset(STATION, evse_id=1)
    with pytest.raises(ValueError, match="discharge"):
        set_charging_profile_request_16(
            Decision("discharge", -5_000),
            connector_id=1,
            transaction_id=1,
            profile_id=1,
            start=datetime(2026, 11, 25, tzinfo=UTC),
        )
    assert station.asked == []


async def test_store_gives_resent_messages_the_same_numbers(csms: CsmsApp) -> None:
    store16 = Ocpp16Store(csms.store)
    first, is_new = await store16.start_transaction(
        STATION,
        connector_id=1,
        id_tag=TAG,
        meter_start=5,
        started_at=T_BEGIN,
        reservation_id=None,
        created_at=T_BEGIN,
    )
    assert is_new
    second, is_new = await store16.start_transaction(
        STATION,
        connector_id=1,
        id_tag=TAG,
        meter_start=5,
        started_at=T_BEGIN,
        reservation_id=None,
        created_at=T_MID,
    )
    assert (second, is_new) == (first, False)
    other, _ = await store16.start_transaction(
        STATION,
        connector_id=2,
        id_tag=TAG,
        meter_start=5,
        started_at=T_BEGIN,
        reservation_id=None,
        created_at=T_BEGIN,
    )
    assert other != first
    assert await store16.sequence_number(STATION, first, "start") == (0, True)
    assert await store16.sequence_number(STATION, first, "mv:a") == (1, True)
    assert await store16.sequence_number(STATION, first, "mv:b") == (2, True)
    assert await store16.sequence_number(STATION, first, "mv:a") == (1, False)
    assert await store16.sequence_number(STATION, other, "mv:a") == (1, True)
    active = await store16.active_transaction(STATION, 1)
    assert active is not None and active.transaction_id == first
    assert not await store16.is_stopped(STATION, first)
    assert await store16.sequence_number(STATION, first, "stop") == (3, True)
    assert await store16.is_stopped(STATION, first)
    assert await store16.active_transaction(STATION, 1) is None


async def test_an_evs_needs_travel_as_data_transfer_and_bad_ones_are_refused(
    csms: CsmsApp, station: Station16
) -> None:
    """1.6 has no NotifyEVChargingNeeds: the 2.0.1 request comes as DataTransfer data, is
    checked against the 2.0.1 schema and kept like a 2.0.1 EV's needs."""
    import json

    from csms.blocks16.ev_needs import MAX_NEEDS_CHARS, NEEDS_MESSAGE, NEEDS_VENDOR
    from csms.store.charging_needs import ChargingNeedsStore

    needs = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "AC_three_phase",
            "departureTime": "2026-11-25T19:30:00.000Z",
            "acChargingParameters": {
                "energyAmount": 21_500, "evMinCurrent": 6, "evMaxCurrent": 16,
                "evMaxVoltage": 400,
            },
        },
    }  # fmt: skip

    async def send(data: str | None, message_id: str = NEEDS_MESSAGE) -> Any:
        return await station.call(
            call.DataTransfer(vendor_id=NEEDS_VENDOR, message_id=message_id, data=data)
        )

    refused = [
        await send("{not json"),
        await send("[1, 2]"),
        await send(json.dumps({"evseId": 1})),  # no chargingNeeds: not the 2.0.1 schema
        await send("x" * (MAX_NEEDS_CHARS + 1)),
        await send(None),
    ]
    assert [r.status for r in refused] == ["Rejected"] * 5
    assert all(r.data for r in refused)  # each says why
    assert await ChargingNeedsStore(csms.store).latest(STATION, 1) is None  # nothing kept
    assert (await send(json.dumps(needs), message_id="Other")).status == "UnknownMessageId"
    assert (await send(json.dumps(needs))).status == "Accepted"
    stored = await ChargingNeedsStore(csms.store).latest(STATION, 1)
    assert stored is not None
    assert stored.departure_time == "2026-11-25T19:30:00.000Z"
    assert stored.target_energy_wh == 21_500
