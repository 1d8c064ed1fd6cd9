"""Charging profiles (OCPP 2.0.1 part K, Smart Charging): a pure core, no I/O, no clock.

A profile's schedule says, for each instant, a limit in W or A; the station turns the
installed profiles of an EVSE into the one setpoint its EV follows. On 2.0.1 V2G uses the
pre-2.1 convention: a positive limit charges, a negative one discharges. A limit in A becomes
W at ``NOMINAL_VOLTAGE`` per phase (3 phases unless the period says otherwise).

Precedence (K01, simplified to what a single-connector EVSE needs): a TxProfile of the
running transaction beats any TxDefaultProfile; among profiles of one purpose the highest
stackLevel with a limit at that instant wins, an EVSE's own profile before a station-wide
one (evse 0) at the same level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

NOMINAL_VOLTAGE = 230  # V per phase, to turn an A limit into W
DEFAULT_PHASES = 3  # OCPP 2.0.1: numberPhases absent means three
RATED_CURRENT_A = 32  # what each EVSE can carry per phase: the limit when no profile says one
RATED_POWER_W = RATED_CURRENT_A * NOMINAL_VOLTAGE * DEFAULT_PHASES
MAX_COMPOSITE_PERIODS = 1024  # a composite schedule longer than this is cut short
_CYCLES = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}


class Purpose(StrEnum):
    """ChargingProfilePurposeEnumType."""

    STATION_MAX = "ChargingStationMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"
    EXTERNAL = "ChargingStationExternalConstraints"


class Kind(StrEnum):
    """ChargingProfileKindEnumType."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """From ``start_s`` seconds into the schedule on, ``limit`` in the schedule's unit."""

    start_s: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """One ChargingScheduleType: unit ``W`` or ``A``, periods in ascending start order."""

    id: int
    unit: str
    periods: tuple[SchedulePeriod, ...]
    start: datetime | None = None
    duration_s: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """One ChargingProfileType as the station keeps it."""

    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: Schedule
    transaction_id: str | None = None
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class ProfileError(ValueError):
    """A profile this station cannot take; ``reason`` is the OCPP reasonCode to answer with."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def check_profile(profile: ChargingProfile, evse_id: int) -> None:
    """Raise ProfileError unless the profile is one this station applies (K01 rules)."""
    if profile.purpose is Purpose.STATION_MAX:
        raise ProfileError("NotSupported", "ChargingStationMaxProfile is not supported")
    if profile.purpose is Purpose.EXTERNAL:
        raise ProfileError("InvalidProfile", "external constraints are not set by the CSMS")
    if profile.purpose is Purpose.TX and (evse_id <= 0 or not profile.transaction_id):
        raise ProfileError("InvalidProfile", "a TxProfile needs an EVSE and a transactionId")
    if profile.schedule.unit not in ("W", "A"):
        raise ProfileError("InvalidSchedule", f"unknown chargingRateUnit {profile.schedule.unit}")
    starts = [p.start_s for p in profile.schedule.periods]
    if not starts or starts[0] != 0 or starts != sorted(set(starts)):
        raise ProfileError("InvalidSchedule", "periods must start at 0 and ascend")
    if profile.kind is Kind.RECURRING and (
        profile.recurrency not in _CYCLES or profile.schedule.start is None
    ):
        raise ProfileError("InvalidSchedule", "a Recurring profile needs recurrencyKind and start")


def period_watts(schedule: Schedule, period: SchedulePeriod) -> int:
    """A period's limit in W (sign kept: < 0 discharges)."""
    if schedule.unit == "A":
        phases = period.phases or DEFAULT_PHASES
        return round(period.limit * NOMINAL_VOLTAGE * phases)
    return round(period.limit)


def _origin(profile: ChargingProfile, now: datetime, tx_start: datetime | None) -> datetime | None:
    """Where the schedule's second 0 lies for the cycle containing ``now``."""
    schedule = profile.schedule
    if profile.kind is Kind.RELATIVE:
        return tx_start if tx_start is not None else schedule.start
    if profile.kind is Kind.RECURRING:
        assert schedule.start is not None
        cycle = _CYCLES[profile.recurrency or "Daily"]
        if now < schedule.start:
            return None
        return schedule.start + ((now - schedule.start) // cycle) * cycle
    return schedule.start if schedule.start is not None else tx_start


def _valid(profile: ChargingProfile, now: datetime) -> bool:
    if profile.valid_from is not None and now < profile.valid_from:
        return False
    return profile.valid_to is None or now < profile.valid_to


def limit_at(profile: ChargingProfile, now: datetime, tx_start: datetime | None) -> int | None:
    """The profile's limit in W at ``now``; None when it says nothing then."""
    origin = _origin(profile, now, tx_start)
    if origin is None or not _valid(profile, now) or now < origin:
        return None
    elapsed = (now - origin).total_seconds()
    schedule = profile.schedule
    if schedule.duration_s is not None and elapsed >= schedule.duration_s:
        return None
    current = [p for p in schedule.periods if p.start_s <= elapsed]
    return period_watts(schedule, current[-1]) if current else None


def next_change(
    profile: ChargingProfile, now: datetime, tx_start: datetime | None
) -> datetime | None:
    """The first instant after ``now`` at which the profile's limit may change."""
    candidates = [t for t in (profile.valid_from, profile.valid_to) if t is not None and t > now]
    origin = _origin(profile, now, tx_start)
    if origin is None and profile.kind is Kind.RECURRING and profile.schedule.start is not None:
        candidates.append(profile.schedule.start)
    if origin is not None:
        schedule = profile.schedule
        marks = [origin + timedelta(seconds=p.start_s) for p in schedule.periods]
        if schedule.duration_s is not None:
            marks.append(origin + timedelta(seconds=schedule.duration_s))
        if profile.kind is Kind.RECURRING:
            marks.append(origin + _CYCLES[profile.recurrency or "Daily"])
        candidates += [t for t in marks if t > now]
    return min(candidates) if candidates else None


@dataclass(frozen=True, slots=True)
class Installed:
    """A profile with the EVSE it was set for (0: the whole station)."""

    evse_id: int
    profile: ChargingProfile


@dataclass(frozen=True, slots=True)
class Criteria:
    """Which installed profiles a Clear or Get addresses (None: any)."""

    profile_ids: tuple[int, ...] = ()
    evse_id: int | None = None
    purpose: Purpose | None = None
    stack_level: int | None = None

    def matches(self, item: Installed) -> bool:
        p = item.profile
        return (
            (not self.profile_ids or p.id in self.profile_ids)
            and (self.evse_id is None or item.evse_id == self.evse_id)
            and (self.purpose is None or p.purpose is self.purpose)
            and (self.stack_level is None or p.stack_level == self.stack_level)
        )


class ProfileStore:
    """The profiles installed on one station."""

    def __init__(self) -> None:
        self._items: list[Installed] = []

    def install(self, evse_id: int, profile: ChargingProfile) -> None:
        """Add ``profile``; it replaces one with the same id, or with the same purpose, stack
        level and EVSE (and transaction, for a TxProfile) (K01.FR.05)."""

        def replaced(item: Installed) -> bool:
            old = item.profile
            same_slot = (
                item.evse_id == evse_id
                and old.purpose is profile.purpose
                and old.stack_level == profile.stack_level
                and old.transaction_id == profile.transaction_id
            )
            return old.id == profile.id or same_slot

        self._items = [i for i in self._items if not replaced(i)] + [Installed(evse_id, profile)]

    def clear(self, criteria: Criteria) -> int:
        """Remove the matching profiles; returns how many went."""
        kept = [i for i in self._items if not criteria.matches(i)]
        removed = len(self._items) - len(kept)
        self._items = kept
        return removed

    def clear_transaction(self, transaction_id: str) -> None:
        """A transaction ended: its TxProfiles end with it."""
        self._items = [i for i in self._items if i.profile.transaction_id != transaction_id]

    def find(self, criteria: Criteria) -> list[Installed]:
        return [i for i in self._items if criteria.matches(i)]

    def _relevant(self, evse_id: int, transaction_id: str | None) -> Iterable[Installed]:
        for item in self._items:
            p = item.profile
            if p.purpose is Purpose.TX and item.evse_id == evse_id:
                if transaction_id is not None and p.transaction_id == transaction_id:
                    yield item
            elif p.purpose is Purpose.TX_DEFAULT and item.evse_id in (0, evse_id):
                yield item

    def limit(
        self, evse_id: int, transaction_id: str | None, tx_start: datetime | None, now: datetime
    ) -> int | None:
        """The setpoint (W, < 0 discharges) for the EVSE's transaction now; None: no limit."""
        for purpose in (Purpose.TX, Purpose.TX_DEFAULT):
            ranked = sorted(
                (
                    i
                    for i in self._relevant(evse_id, transaction_id)
                    if i.profile.purpose is purpose
                ),
                key=lambda i: (i.profile.stack_level, i.evse_id != 0),
                reverse=True,
            )
            for item in ranked:
                value = limit_at(item.profile, now, tx_start)
                if value is not None:
                    return value
        return None

    def next_change(
        self, evse_id: int, transaction_id: str | None, tx_start: datetime | None, now: datetime
    ) -> datetime | None:
        """The first instant after ``now`` at which :meth:`limit` may change."""
        times = [
            t
            for i in self._relevant(evse_id, transaction_id)
            if (t := next_change(i.profile, now, tx_start)) is not None
        ]
        return min(times) if times else None

    def composite(
        self,
        evse_id: int,
        transaction_id: str | None,
        tx_start: datetime | None,
        start: datetime,
        duration_s: int,
    ) -> list[tuple[int, int]]:
        """The composite schedule (K08) of ``duration_s`` seconds from ``start``: periods as
        (seconds from ``start``, limit in W), where no profile limits the EVSE its rated
        power; consecutive equal limits merge. ``transaction_id`` None: no transaction runs,
        so only TxDefaultProfiles apply (EVSE 0: the station-wide ones)."""
        end = start + timedelta(seconds=max(0, duration_s))
        periods: list[tuple[int, int]] = []
        moment: datetime | None = start
        while moment is not None and moment < end and len(periods) < MAX_COMPOSITE_PERIODS:
            found = self.limit(evse_id, transaction_id, tx_start, moment)
            rated = RATED_POWER_W if found is None else found
            limit = max(-RATED_POWER_W, min(rated, RATED_POWER_W))
            offset = int((moment - start).total_seconds())
            if periods and periods[-1][0] == offset:
                periods.pop()
            if not periods or periods[-1][1] != limit:
                periods.append((offset, limit))
            moment = self.next_change(evse_id, transaction_id, tx_start, moment)
        return periods or [(0, RATED_POWER_W)]
