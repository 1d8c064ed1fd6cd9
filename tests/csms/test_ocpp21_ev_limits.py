"""A 2.1 station on the ``ocpp`` library's ChargePoint, its EV's declared limits, and the real
dispatcher under a tariff where exporting pays all day: nothing beyond the EV's limits is sent."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v21 import call

from csms.app import CsmsApp
from csms.dispatch import DispatchPolicy
from csms.dispatching import Dispatcher, DispatchSettings
from csms.model import TokenRecord
from csms.tariffs import parse_tariff
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station
from tests.csms.test_ocpp21 import T0, TAG, V2X_NEEDS, Station21, energy, event

POLICY = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)
EXPORT_PAYS = b"""\
id: export-pays
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 10000, export_price: 2000000}
"""


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station21]:
    await csms.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, T0))
    async with library_station(csms, Station21, ["ocpp2.1"], "ocpp2.1") as cp:
        yield cp


def soc(timestamp: str, pct: int) -> dict[str, Any]:
    reading = energy(timestamp, 10_000, 0, "Sample.Periodic")
    reading["sampled_value"].append(
        {"value": pct, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}}
    )
    return reading


async def session_with_needs(station: Station21, **v2x: Any) -> None:
    idtoken = {"id_token": TAG, "type": "ISO14443"}
    started = await station.call(
        event("Started", 0, T0, id_token=idtoken, meter_value=[soc(T0, 60)])
    )
    assert started.id_token_info["status"] == "Accepted"
    needs = copy.deepcopy(V2X_NEEDS)
    needs["v2x_charging_parameters"].update(v2x)
    answer = await station.call(
        call.NotifyEVChargingNeeds(evse_id=1, charging_needs=needs, timestamp=T0)
    )
    assert answer.status == "Rejected"  # stored; the app runs no dispatcher of its own


async def dispatch_over_a_day(csms: CsmsApp, station: Station21) -> list[dict[str, Any]]:
    """Dispatch at SoC from 95% down to 5% across the day; the periods the station was sent."""
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EXPORT_PAYS, source="export-pays.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    for n, pct in enumerate(range(95, 0, -10), start=1):
        at = f"2026-11-25T{n + 8:02d}:00:00.000Z"
        await station.call(event("Updated", n, at, meter_value=[soc(at, pct)]))
        await dispatcher.run_once()
    sent = [kw for action, kw in station.asked if action == "SetChargingProfile"]
    assert sent, "the dispatcher sent no profile"
    return [
        period
        for request in sent
        for schedule in request["charging_profile"]["charging_schedule"]
        for period in schedule["charging_schedule_period"]
    ]


def signed_values(period: dict[str, Any]) -> list[float]:
    return [period[k] for k in ("limit", "setpoint", "discharge_limit") if k in period]


async def test_an_ev_declaring_no_discharge_is_never_sent_a_negative_value(
    csms: CsmsApp, station: Station21
) -> None:
    await session_with_needs(station, max_discharge_power=0, min_discharge_power=0)
    periods = await dispatch_over_a_day(csms, station)
    assert all(v >= 0 for p in periods for v in signed_values(p)), periods
    assert all(p.get("operation_mode", "ChargingOnly") == "ChargingOnly" for p in periods)


async def test_an_ev_declaring_5kw_discharge_and_3kw_charge_is_never_sent_more(
    csms: CsmsApp, station: Station21
) -> None:
    await session_with_needs(
        station,
        max_discharge_power=5_000,
        min_discharge_power=1_000,
        max_charge_power=3_000,
        ev_target_energy_request=2_000,  # a target it can reach while discharging in the day
    )
    periods = await dispatch_over_a_day(csms, station)
    values = [v for p in periods for v in signed_values(p)]
    assert all(-5_000 <= v <= 3_000 for v in values), periods
    assert -5_000 in values  # exporting pays: it does discharge, at its own limit
    assert 3_000 in values  # at or below the reserve it charges, at its own limit


async def test_an_ev_that_needs_every_hour_to_reach_its_target_is_not_discharged(
    csms: CsmsApp, station: Station21
) -> None:
    # 30 kWh by 17:30 at 3 kW: even charging all the time from 09:00 falls short
    await session_with_needs(station, max_charge_power=3_000, ev_target_energy_request=30_000)
    periods = await dispatch_over_a_day(csms, station)
    assert all(v == 3_000 for p in periods for v in signed_values(p)), periods


async def test_remote_start_sends_the_tokens_registered_type(
    csms: CsmsApp, station: Station21
) -> None:
    answer = await csms.stations.request_start_transaction(STATION, TAG, evse_id=1)
    assert answer["status"] == "Accepted"
    await csms.stations.request_start_transaction(STATION, "NOT-REGISTERED", evse_id=1)
    sent = [kw["id_token"] for action, kw in station.asked if action == "RequestStartTransaction"]
    assert sent == [
        {"id_token": TAG, "type": "ISO14443"},
        {"id_token": "NOT-REGISTERED", "type": "Central"},
    ]


async def test_the_departure_check_reads_no_samples_per_pass(
    csms: CsmsApp, station: Station21, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EV's state comes from the stored progress; the reading at its needs is read once."""
    store = csms.store
    lookups = []
    reading_at = store.register_reading_at

    async def refuse(*args: Any) -> Any:
        raise AssertionError("the dispatcher read every sample of the session")

    async def counted(*args: Any) -> Any:
        lookups.append(args)
        return await reading_at(*args)

    monkeypatch.setattr(store, "register_samples", refuse)
    monkeypatch.setattr(store, "meter_samples", refuse)
    monkeypatch.setattr(store, "register_reading_at", counted)
    await session_with_needs(
        station,
        max_discharge_power=5_000,
        min_discharge_power=1_000,
        max_charge_power=3_000,
        ev_target_energy_request=2_000,
    )
    periods = await dispatch_over_a_day(csms, station)
    assert -5_000 in [v for p in periods for v in signed_values(p)]
    assert len(lookups) == 1, lookups
