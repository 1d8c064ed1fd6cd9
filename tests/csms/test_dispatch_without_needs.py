"""A 2.0.1 station declared to take a negative limit as discharge, and the real dispatcher
under a tariff where exporting pays all day.

Without the EV's charging needs the dispatcher knows no departure: it discharges only energy
the session itself put in, never below what the EV arrived with. With 2.0.1 needs (an ISO
15118-2 EV stating its departure and energy) it keeps that target.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result

from csms.app import CsmsApp
from csms.dispatch import DispatchPolicy
from csms.dispatching import Dispatcher, DispatchSettings
from csms.model import NEGATIVE_LIMIT_201, TokenRecord
from csms.tariffs import parse_tariff
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station
from tests.csms.test_ocpp21_ev_limits import EXPORT_PAYS

TAG = "TAG201"
POLICY = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)


class Station201(ChargePoint):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: list[float] = []

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, charging_profile: dict[str, Any], **_: Any) -> Any:
        for schedule in charging_profile["charging_schedule"]:
            self.limits += [p["limit"] for p in schedule["charging_schedule_period"]]
        return call_result.SetChargingProfile(status="Accepted")


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station201]:
    await csms.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, "t"))
    await csms.store.set_station_caps(STATION, discharge=NEGATIVE_LIMIT_201)
    async with library_station(csms, Station201, ["ocpp2.0.1"], "ocpp2.0.1") as cp:
        yield cp


def reading(at: str, import_wh: int, export_wh: int, soc: int) -> dict[str, Any]:
    def value(measurand: str, amount: int, unit: str) -> dict[str, Any]:
        return {"value": amount, "measurand": measurand, "unit_of_measure": {"unit": unit}}

    return {
        "timestamp": at,
        "sampled_value": [
            value("Energy.Active.Import.Register", import_wh, "Wh"),
            value("Energy.Active.Export.Register", export_wh, "Wh"),
            value("SoC", soc, "Percent"),
        ],
    }


def event(kind: str, seq: int, at: str, **extra: Any) -> call.TransactionEvent:
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic"}[kind]
    return call.TransactionEvent(
        event_type=kind,
        seq_no=seq,
        timestamp=at,
        trigger_reason=trigger,
        transaction_info={"transaction_id": "tx-201"},
        evse={"id": 1, "connector_id": 1},
        **extra,
    )


async def dispatch(csms: CsmsApp, station: Station201, readings: list[tuple[int, int]]) -> None:
    """Start at 10:00 with 10 kWh on the import register, then one reading and one dispatch
    pass per quarter hour with the registers given."""
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EXPORT_PAYS, source="export-pays.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    t0 = "2026-11-25T10:00:00.000Z"
    token = {"id_token": TAG, "type": "ISO14443"}
    await station.call(
        event("Started", 0, t0, id_token=token, meter_value=[reading(t0, 10_000, 0, 60)])
    )
    for n, (import_wh, export_wh) in enumerate(readings, start=1):
        at = f"2026-11-25T{10 + n // 4:02d}:{15 * (n % 4):02d}:00.000Z"
        meter = [reading(at, import_wh, export_wh, 60)]
        await station.call(event("Updated", n, at, meter_value=meter))
        await dispatcher.run_once()


async def test_an_ev_without_needs_is_not_discharged_below_its_arrival_energy(
    csms: CsmsApp, station: Station201
) -> None:
    await dispatch(csms, station, [(10_000, 0)])
    assert station.limits == [11_000]  # nothing delivered yet: charge, though exporting pays


async def test_an_ev_without_needs_gives_back_only_what_it_was_given(
    csms: CsmsApp, station: Station201
) -> None:
    # it took 6 kWh. A look every quarter hour: a discharge decided now may last until a
    # decision on the next reading arrives, 45 min at most (the reading gap plus twice the
    # cadence), 5.25 kWh at 7 kW: that fits once (the first look only charges), not after
    await dispatch(csms, station, [(16_000, 0), (16_000, 0), (16_000, 1_750)])
    assert station.limits == [11_000, -7_000, 11_000], station.limits


async def test_a_201_ev_with_needs_keeps_its_departure_target(
    csms: CsmsApp, station: Station201
) -> None:
    # 20 kWh by 12:00 at 11 kW from 10:00: at 10:15, with 0.5 kWh in, no room to discharge
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": "2026-11-25T12:00:00.000Z",
        "ac_charging_parameters": {
            "energy_amount": 20_000,
            "ev_min_current": 6,
            "ev_max_current": 16,
            "ev_max_voltage": 400,
        },
    }
    t0 = "2026-11-25T10:00:00.000Z"
    await station.call(
        event("Started", 0, t0, id_token={"id_token": TAG, "type": "ISO14443"},
              meter_value=[reading(t0, 10_000, 0, 60)])
    )  # fmt: skip
    await station.call(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EXPORT_PAYS, source="export-pays.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    at = "2026-11-25T10:15:00.000Z"
    await station.call(event("Updated", 1, at, meter_value=[reading(at, 10_500, 0, 61)]))
    await dispatcher.run_once()
    assert station.limits == [11_000]


async def test_a_pass_every_two_station_hours_plans_discharge_two_hours_ahead(
    csms: CsmsApp, station: Station201
) -> None:
    """An accelerated station: readings 5 minutes apart, but the dispatcher sees the session
    only every 2 hours of station time. A discharge decided now may run that long, not 5
    minutes, so with 2 hours to departure and 5 kWh still to go none is asked. Nor is one at
    the dispatcher's very first look, before it knows how long a decision stays in force."""
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": "2026-11-25T14:00:00.000Z",
        "ac_charging_parameters": {
            "energy_amount": 20_000,
            "ev_min_current": 6,
            "ev_max_current": 16,
            "ev_max_voltage": 400,
        },
    }
    token = {"id_token": TAG, "type": "ISO14443"}
    t0 = "2026-11-25T10:00:00.000Z"
    await station.call(event("Started", 0, t0, id_token=token, meter_value=[reading(t0, 0, 0, 50)]))
    await station.call(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EXPORT_PAYS, source="export-pays.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=2),
    )
    await dispatcher.run_once()  # 10:00, the first look: how long a decision lasts is unknown
    at = "2026-11-25T10:05:00.000Z"
    await station.call(event("Updated", 1, at, meter_value=[reading(at, 3_000, 0, 55)]))
    await dispatcher.run_once()  # 10:05: 17 kWh to go in 4 h at 11 kW: room to discharge
    for seq, (at, wh) in enumerate(
        [("2026-11-25T11:55:00.000Z", 14_500), ("2026-11-25T12:00:00.000Z", 15_000)], start=2
    ):
        await station.call(event("Updated", seq, at, meter_value=[reading(at, wh, 0, 70)]))
    await dispatcher.run_once()  # 12:00: 5 kWh to go in 2 h; 2 h of discharge would cost it
    assert station.limits == [11_000, -7_000, 11_000], station.limits
