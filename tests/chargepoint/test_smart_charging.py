"""SetChargingProfile and friends against a station whose EVSE has an EV behind a meter:
the profile's sign decides charge or discharge, the EV clamps it and keeps its reserve."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from chargepoint.charging_profiles import (
    ChargingProfile,
    Criteria,
    Kind,
    Purpose,
    Schedule,
    SchedulePeriod,
)
from chargepoint.config import StationConfig
from chargepoint.device_model import DeviceModel, default_variables
from chargepoint.ev import Ev, EvSpec
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import Meter, MeterInfo, public_key_ocmf
from chargepoint.metering import MeterReading, MeterRequest, ReadingContext
from chargepoint.smart_charging import (
    apply_limits,
    clear_charging_profile,
    cost_updated,
    get_charging_profiles,
    set_charging_profile,
)
from chargepoint.station import Station
from chargepoint.transaction import IdToken, StoppedReason, TriggerReason
from tests.chargepoint.fakes import FakeLink, FixedClock

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())


def make_station(*, soc: float = 50, reserve: int = 20) -> tuple[Station, EvMeter]:
    spec = EvSpec(60_000, reserve, 11_000, 7_000, T0 + timedelta(hours=12), 50)
    meter = EvMeter(
        Ev(spec, soc_pct=soc, at=T0),
        Meter(KEY, MeterInfo(serial="M1")),
        public_key=public_key_ocmf(KEY),
        new_ev=lambda at: Ev(spec, soc_pct=soc, at=at),
    )
    station = Station(
        StationConfig(url="ws://h/ocpp", station_id="CP1", evses=2),
        clock=FixedClock(T0),
        device_model=DeviceModel(
            default_variables(station_id="CP1", evse_count=2, aligned_interval=0)
        ),
        meters={
            1: meter,
            2: EvMeter(
                Ev(spec, soc_pct=soc, at=T0),
                Meter(KEY, MeterInfo(serial="M2")),
                public_key=public_key_ocmf(KEY),
            ),
        },
        new_transaction_id=lambda: "tx-1",
        on_error=lambda error: None,
    )
    return station, meter


def start(station: Station, evse_id: int = 1, transaction_id: str = "tx-1") -> None:
    evse = station.evses[evse_id]
    evse.begin(
        now=station.clock.now(),
        transaction_id=transaction_id,
        id_token=IdToken("04AA"),
        trigger=TriggerReason.AUTHORIZED,
        meter=station.sample(
            evse,
            ReadingContext.TRANSACTION_BEGIN,
            "TxStartedMeasurands",
            starting=(transaction_id, IdToken("04AA")),
        ),
    )


def tx_profile(
    limit: float, *, unit: str = "W", pid: int = 1, tx: str = "tx-1", **extra: Any
) -> ChargingProfile:
    periods = extra.pop("periods", ((0, limit),))
    return ChargingProfile(
        id=pid,
        stack_level=extra.pop("stack_level", 0),
        purpose=extra.pop("purpose", Purpose.TX),
        kind=Kind.ABSOLUTE,
        schedule=Schedule(pid, unit, tuple(SchedulePeriod(s, v) for s, v in periods), T0),
        transaction_id=tx if extra.pop("with_tx", True) else None,
    )


def read(meter: EvMeter, at: datetime) -> MeterReading:
    return meter.read(MeterRequest(at, ReadingContext.SAMPLE_PERIODIC))


def status(result: Any) -> tuple[str, str | None]:
    info = result.status_info
    return result.status, None if info is None else info["reason_code"]


async def test_negative_limit_discharges_positive_charges_both_clamped_to_the_ev() -> None:
    station, meter = make_station()
    start(station)
    result, _ = set_charging_profile(station, 1, tx_profile(-50_000))
    assert status(result) == ("Accepted", None)
    assert meter.power_w == -7_000  # the EV's discharge limit, not 50 kW
    r1 = read(meter, T0 + timedelta(hours=1))
    assert (r1.import_wh, r1.export_wh) == (0, 7_000)
    station.clock.current = T0 + timedelta(hours=1)  # type: ignore[attr-defined]
    set_charging_profile(station, 1, tx_profile(32, unit="A", pid=2))  # 22 kW asked
    assert meter.power_w == 11_000
    r2 = read(meter, T0 + timedelta(hours=2))
    assert (r2.import_wh, r2.export_wh) == (11_000, 7_000)


async def test_discharge_stops_at_the_reserve() -> None:
    station, meter = make_station(soc=25, reserve=20)  # 3 kWh above the reserve of 60 kWh
    start(station)
    set_charging_profile(station, 1, tx_profile(-7_000))
    later = read(meter, T0 + timedelta(hours=2))
    # 3 kWh to the reserve; the EV stops within a microsecond of it, never below
    assert 2_999 <= later.export_wh <= 3_000 and later.power_w == 0
    assert later.soc == 20 and meter.ev.state.stored_uj >= meter.ev.spec.reserve_uj


async def test_profiles_for_unknown_transactions_evses_or_the_station_max_are_rejected() -> None:
    station, meter = make_station()
    assert status(set_charging_profile(station, 1, tx_profile(-7_000))[0]) == (
        "Rejected",
        "TxNotFound",
    )
    start(station)
    assert status(set_charging_profile(station, 1, tx_profile(1, tx="tx-9"))[0]) == (
        "Rejected",
        "TxNotFound",
    )
    assert status(set_charging_profile(station, 5, tx_profile(1))[0]) == ("Rejected", "UnknownEvse")
    station_max = tx_profile(1, purpose=Purpose.STATION_MAX, with_tx=False)
    assert status(set_charging_profile(station, 0, station_max)[0]) == ("Rejected", "NotSupported")
    assert meter.power_w == 11_000  # nothing changed: the EV charges at its own maximum


async def test_a_default_profile_governs_the_next_transaction_from_its_start() -> None:
    station, meter = make_station()
    default = tx_profile(-4_000, purpose=Purpose.TX_DEFAULT, with_tx=False)
    assert status(set_charging_profile(station, 0, default)[0]) == ("Accepted", None)
    start(station)
    apply_limits(station)
    assert meter.power_w == -4_000
    # a TxProfile of the running transaction overrides the default; clearing it restores it
    set_charging_profile(station, 1, tx_profile(6_000, pid=2))
    assert meter.power_w == 6_000
    result, _ = clear_charging_profile(station, Criteria(profile_ids=(2,)))
    assert result.status == "Accepted" and meter.power_w == -4_000
    result, _ = clear_charging_profile(station, Criteria(profile_ids=(2,)))
    assert result.status == "Unknown"


async def test_a_multi_period_schedule_is_followed_on_the_station_clock() -> None:
    station, meter = make_station()
    start(station)
    profile = tx_profile(0, periods=((0, 11_000), (1800, -7_000)))
    set_charging_profile(station, 1, profile)
    for _ in range(5):  # the timer sleeps on the fixed clock (which jumps) and applies
        await asyncio.sleep(0)
    assert read(meter, T0 + timedelta(minutes=30)).power_w == -7_000
    r = read(meter, T0 + timedelta(hours=1))
    assert (r.import_wh, r.export_wh) == (5_500, 3_500)  # exactly at the 30-minute mark
    await station.shutdown()


async def test_get_charging_profiles_reports_them_or_says_none() -> None:
    station, _ = make_station()
    result, follow = get_charging_profiles(station, 3, Criteria())
    assert result.status == "NoProfiles" and follow is None
    start(station)
    set_charging_profile(station, 1, tx_profile(-7_000))
    set_charging_profile(
        station, 0, tx_profile(2_000, pid=5, purpose=Purpose.TX_DEFAULT, with_tx=False)
    )
    result, follow = get_charging_profiles(station, 3, Criteria())
    assert result.status == "Accepted" and follow is not None
    link = FakeLink()
    await station.go_online(link)
    await follow()
    reports = [p for p in link.sent if type(p).__name__ == "ReportChargingProfiles"]
    assert [(r.evse_id, r.tbc, [p["id"] for p in r.charging_profile]) for r in reports] == [
        (0, True, [5]),
        (1, None, [1]),
    ]
    assert all(r.request_id == 3 for r in reports)


async def test_running_cost_and_the_total_cost_of_the_ended_transaction_are_kept() -> None:
    station, _ = make_station()
    cost_updated(station, "tx-1", 1.25)
    assert station.running_costs == {"tx-1": 1.25}

    def answer(payload: Any) -> Any:
        if type(payload).__name__ == "TransactionEvent":
            cost = 3.5 if payload.event_type == "Ended" else 1.5
            return SimpleNamespace(id_token_info=None, total_cost=cost)
        return SimpleNamespace()

    link = FakeLink(answer)
    await station.go_online(link)
    start(station)
    evse = station.evses[1]
    await station.submit(
        evse.update(now=T0, trigger=TriggerReason.METER_VALUE_PERIODIC, meter=None)
    )
    assert station.running_costs["tx-1"] == 1.5 and "tx-1" not in station.total_costs
    ended = evse.end(
        now=T0,
        trigger=TriggerReason.STOP_AUTHORIZED,
        reason=StoppedReason.LOCAL,
        meter=station.sample(evse, ReadingContext.TRANSACTION_END, "TxEndedMeasurands"),
    )
    await station.submit(ended)
    assert station.total_costs == {"tx-1": 3.5}


@settings(max_examples=60, deadline=None)
@given(
    limit=st.floats(min_value=-100, max_value=100, allow_nan=False).map(lambda a: round(a, 1)),
    unit=st.sampled_from(["W", "A"]),
    soc=st.integers(min_value=0, max_value=100),
    hours=st.integers(min_value=1, max_value=12),
)
def test_any_profile_moves_energy_in_its_sign_within_the_ev_limits_and_reserve(
    limit: float, unit: str, soc: int, hours: int
) -> None:
    station, meter = make_station(soc=soc, reserve=20)
    start(station)
    asked = limit * 1000 if unit == "W" else limit  # W: up to +-100 kW; A: up to +-100 A
    result, _ = set_charging_profile(station, 1, tx_profile(asked, unit=unit))
    assert result.status == "Accepted"
    watts = round(asked) if unit == "W" else round(asked * 230 * 3)
    power = meter.power_w
    assert -7_000 <= power <= 11_000
    assert power * watts >= 0  # never against the profile's sign
    assert power == 0 or abs(power) == min(abs(watts), 11_000 if watts > 0 else 7_000)
    end = read(meter, T0 + timedelta(hours=hours))
    spec = meter.ev.spec
    if watts >= 0:
        assert end.export_wh == 0
    else:
        assert end.import_wh == 0
        assert meter.ev.state.stored_uj >= min(spec.reserve_uj, spec.capacity_uj * soc // 100)
    assert 0 <= meter.ev.state.stored_uj <= spec.capacity_uj
