"""Charging profiles as limits over time: units, signs, periods, precedence, validity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargepoint.charging_profiles import (
    ChargingProfile,
    Criteria,
    Kind,
    ProfileError,
    ProfileStore,
    Purpose,
    Schedule,
    SchedulePeriod,
    check_profile,
    limit_at,
    next_change,
)
from chargepoint.payloads import charging_profile_from, charging_profile_payload

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def profile(
    *periods: tuple[int, float],
    purpose: Purpose = Purpose.TX,
    kind: Kind = Kind.ABSOLUTE,
    unit: str = "W",
    start: datetime | None = T0,
    **extra: Any,
) -> ChargingProfile:
    values: dict[str, Any] = dict(
        id=1,
        stack_level=0,
        purpose=purpose,
        kind=kind,
        schedule=Schedule(1, unit, tuple(SchedulePeriod(s, v) for s, v in periods), start),
        transaction_id="tx-1" if purpose is Purpose.TX else None,
    )
    values.update(extra)
    return ChargingProfile(**values)


def test_signed_watts_pass_through_and_amps_become_watts_at_230_v() -> None:
    assert limit_at(profile((0, -7000)), T0, None) == -7000
    assert limit_at(profile((0, 16), unit="A"), T0, None) == 16 * 230 * 3
    one_phase = Schedule(1, "A", (SchedulePeriod(0, -10, phases=1),), T0)
    assert limit_at(profile((0, 0), schedule=one_phase), T0, None) == -2300


def test_periods_switch_at_their_start_and_duration_ends_the_schedule() -> None:
    p = profile((0, 11_000), (1800, -7_000))
    p = ChargingProfile(
        **{**_fields(p), "schedule": Schedule(1, "W", p.schedule.periods, T0, 3600)}
    )
    assert limit_at(p, T0 - timedelta(seconds=1), None) is None  # before its start
    assert limit_at(p, T0 + timedelta(seconds=1799), None) == 11_000
    assert limit_at(p, T0 + timedelta(seconds=1800), None) == -7_000
    assert limit_at(p, T0 + timedelta(seconds=3600), None) is None
    assert next_change(p, T0 + timedelta(seconds=10), None) == T0 + timedelta(seconds=1800)
    assert next_change(p, T0 + timedelta(seconds=1800), None) == T0 + timedelta(seconds=3600)


def _fields(p: ChargingProfile) -> dict[str, Any]:
    return {name: getattr(p, name) for name in ChargingProfile.__slots__}


def test_relative_profiles_count_from_the_transaction_start_and_recurring_ones_repeat() -> None:
    relative = profile((0, 5_000), (600, 0), kind=Kind.RELATIVE, start=None)
    tx_start = T0 + timedelta(hours=2)
    assert limit_at(relative, tx_start + timedelta(seconds=599), tx_start) == 5_000
    assert limit_at(relative, tx_start + timedelta(seconds=600), tx_start) == 0
    daily = profile((0, 3_000), (3600, -3_000), kind=Kind.RECURRING, recurrency="Daily")
    assert limit_at(daily, T0 + timedelta(days=3, minutes=30), None) == 3_000
    assert limit_at(daily, T0 + timedelta(days=3, minutes=90), None) == -3_000
    assert next_change(daily, T0 + timedelta(days=3, hours=5), None) == T0 + timedelta(days=4)


def test_validity_window_bounds_a_profile() -> None:
    p = profile((0, 1_000), valid_from=T0 + timedelta(hours=1), valid_to=T0 + timedelta(hours=2))
    assert limit_at(p, T0, None) is None
    assert limit_at(p, T0 + timedelta(minutes=90), None) == 1_000
    assert limit_at(p, T0 + timedelta(hours=2), None) is None


def test_unsupported_or_malformed_profiles_are_refused_with_a_reason() -> None:
    cases = [
        (profile((0, 1), purpose=Purpose.STATION_MAX), 0, "NotSupported"),
        (profile((0, 1), purpose=Purpose.EXTERNAL), 0, "InvalidProfile"),
        (profile((0, 1)), 0, "InvalidProfile"),  # a TxProfile for the whole station
        (profile((0, 1), unit="kW"), 1, "InvalidSchedule"),
        (profile((60, 1)), 1, "InvalidSchedule"),  # first period not at 0
        (profile((0, 1), (0, 2)), 1, "InvalidSchedule"),
        (profile((0, 1), kind=Kind.RECURRING), 1, "InvalidSchedule"),  # no recurrencyKind
    ]
    for p, evse_id, reason in cases:
        with pytest.raises(ProfileError) as caught:
            check_profile(p, evse_id)
        assert caught.value.reason == reason
    check_profile(profile((0, -7000)), 1)


def test_tx_profile_beats_default_and_higher_stack_level_beats_lower() -> None:
    store = ProfileStore()
    store.install(0, profile((0, 2_000), purpose=Purpose.TX_DEFAULT, id=10))
    assert store.limit(1, "tx-1", T0, T0) == 2_000  # station-wide default reaches EVSE 1
    store.install(1, profile((0, 4_000), purpose=Purpose.TX_DEFAULT, id=11, stack_level=1))
    assert store.limit(1, "tx-1", T0, T0) == 4_000
    store.install(1, profile((0, -6_000), id=12))
    assert store.limit(1, "tx-1", T0, T0) == -6_000
    assert store.limit(1, "tx-other", T0, T0) == 4_000  # TxProfile of another transaction
    assert store.limit(2, "tx-2", T0, T0) == 2_000
    # same purpose, stack level and EVSE: the new profile replaces the old one
    store.install(1, profile((0, 1_000), id=13))
    assert [i.profile.id for i in store.find(Criteria(purpose=Purpose.TX))] == [13]
    assert store.clear(Criteria(profile_ids=(13,))) == 1
    store.clear_transaction("tx-1")
    assert store.clear(Criteria(evse_id=0)) == 1
    assert store.limit(1, "tx-1", T0, T0) == 4_000


def test_profile_converts_from_the_library_dict_and_back() -> None:
    raw = {
        "id": 7,
        "stack_level": 2,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Absolute",
        "transaction_id": "tx-9",
        "charging_schedule": [
            {
                "id": 7,
                "start_schedule": "2026-11-25T16:00:00.000Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": -7400.0}],
            }
        ],
    }
    p = charging_profile_from(raw)
    assert (p.purpose, p.kind, p.transaction_id, p.schedule.start) == (
        Purpose.TX,
        Kind.ABSOLUTE,
        "tx-9",
        T0,
    )
    assert limit_at(p, T0, None) == -7400
    assert charging_profile_payload(p) == raw
