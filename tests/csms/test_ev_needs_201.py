"""OCPP 2.0.1 NotifyEVChargingNeeds (K15, an ISO 15118-2 EV): accepted and stored, so the
dispatcher knows the EV's departure time and the energy it wants by then."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ocpp.v201 import ChargePoint, call

from csms.app import CsmsApp
from csms.store.charging_needs import ChargingNeedsStore
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station

AC_NEEDS = {
    "requested_energy_transfer": "AC_three_phase",
    "departure_time": "2026-11-25T19:30:00.000Z",
    "ac_charging_parameters": {
        "energy_amount": 21_500,
        "ev_min_current": 6,
        "ev_max_current": 16,
        "ev_max_voltage": 400,
    },
}


@pytest.fixture
def csms_database(database: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[ChargePoint]:
    async with library_station(csms, ChargePoint, ["ocpp2.0.1"], "ocpp2.0.1") as cp:
        yield cp


async def test_a_201_ev_states_its_departure_and_energy(
    csms: CsmsApp, station: ChargePoint
) -> None:
    wakes: list[str] = []
    csms.server.services.plan_due = lambda: wakes.append("pass")  # a dispatcher runs
    answer = await station.call(
        call.NotifyEVChargingNeeds(charging_needs=AC_NEEDS, evse_id=1), suppress=False
    )
    assert answer.status == "Accepted"  # a schedule will follow (K15) ...
    assert wakes == ["pass"]  # ... from a dispatcher pass run at once
    stored = await ChargingNeedsStore(csms.store).latest(STATION, 1)
    assert stored is not None
    assert stored.departure_time == "2026-11-25T19:30:00.000Z"
    assert stored.target_energy_wh == 21_500
    assert not stored.bidirectional  # 2.0.1 has no bidirectional transfer


async def test_a_201_needs_without_energy_amount_is_refused_by_schema(
    csms: CsmsApp, station: ChargePoint
) -> None:
    from ocpp.exceptions import OCPPError

    bad = {**AC_NEEDS, "ac_charging_parameters": {"ev_min_current": 6}}
    with pytest.raises(OCPPError):
        await station.call(
            call.NotifyEVChargingNeeds(charging_needs=bad, evse_id=1), suppress=False
        )
    assert await ChargingNeedsStore(csms.store).latest(STATION, 1) is None


async def test_201_needs_are_placed_on_the_sessions_clock(
    csms: CsmsApp, station: ChargePoint
) -> None:
    """2.0.1 needs carry no time: the CSMS places them on the station's clock (an accelerated
    one here, a day behind), just after the session's last event, not at its own time."""
    from datetime import timedelta

    from csms.model import TokenRecord
    from csms.timeutil import parse_timestamp

    await csms.store.add_token(TokenRecord("TAG201", "ISO14443", "Accepted", "invoice", None, "t"))
    started = call.TransactionEvent(
        event_type="Started",
        seq_no=0,
        timestamp="2026-11-24T10:00:00.000Z",
        trigger_reason="Authorized",
        transaction_info={"transaction_id": "tx-1"},
        evse={"id": 1, "connector_id": 1},
        id_token={"id_token": "TAG201", "type": "ISO14443"},
    )
    await station.call(started)
    await station.call(call.NotifyEVChargingNeeds(charging_needs=AC_NEEDS, evse_id=1))
    stored = await ChargingNeedsStore(csms.store).latest(STATION, 1)
    assert stored is not None and stored.timestamp is not None
    at = parse_timestamp(stored.timestamp)
    started_at = parse_timestamp("2026-11-24T10:00:00.000Z")
    assert started_at <= at < started_at + timedelta(seconds=5), stored.timestamp


async def test_without_a_dispatcher_needs_are_stored_but_no_schedule_is_promised(
    csms: CsmsApp, station: ChargePoint
) -> None:
    """Accepted tells the station a schedule follows (K15), and a simulated EV waits for it:
    a CSMS running no dispatcher (no ledger) says Rejected, and still keeps the needs."""
    assert csms.server.services.plan_due is None
    answer = await station.call(
        call.NotifyEVChargingNeeds(charging_needs=AC_NEEDS, evse_id=1), suppress=False
    )
    assert answer.status == "Rejected"
    stored = await ChargingNeedsStore(csms.store).latest(STATION, 1)
    assert stored is not None and stored.target_energy_wh == 21_500
