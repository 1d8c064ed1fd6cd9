"""The charging profiles a station accepted from this CSMS on its current connection (pure).

A 2.1 UpdateDynamicSchedule names only a ``chargingProfileId``, and an AFRRSignal only a
value on the active profile's ``v2xSignalWattCurve``: to bound the power they set, the CSMS
must know which EVSE and unit that profile has, and whether it sent a curve whose powers it
clamped. Every SetChargingProfile passes through the one outbound helper
(``StationConnection.call``), which records here what the station accepted. At most
``MAX_PROFILES`` are kept per connection (the oldest is forgotten first).

Each profile also keeps its latest dynamic values (``values``: ``limit``, ``setpoint``,
``dischargeLimit``, ``setpointReactive`` and their phases): those of its first period when it
was set, replaced field by field by each UpdateDynamicSchedule the station accepted. A 2.1
station's PullDynamicScheduleUpdate is answered with them (``csms.blocks21.dynamic``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

MAX_PROFILES = 64
DYNAMIC_FIELDS = tuple(
    name + suffix
    for name in ("limit", "dischargeLimit", "setpoint", "setpointReactive")
    for suffix in ("", "_L2", "_L3")
)


def _dynamic_values(holder: Any) -> dict[str, float]:
    if not isinstance(holder, dict):
        return {}
    return {
        name: value
        for name in DYNAMIC_FIELDS
        if isinstance(value := holder.get(name), int | float) and not isinstance(value, bool)
    }


@dataclass(frozen=True, slots=True)
class SentProfile:
    """What the CSMS needs of one accepted profile to bound an update of it."""

    profile_id: int
    evse_id: int
    amperes: bool  # chargingRateUnit A
    signal_curve: bool  # it has a v2xSignalWattCurve (its powers were clamped when sent)
    values: dict[str, float] = field(default_factory=dict)  # its latest dynamic values


class SentProfiles:
    """Accepted profiles by id, oldest first, bounded."""

    def __init__(self) -> None:
        self._by_id: dict[int, SentProfile] = {}

    def observe(self, action: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Record a SetChargingProfile or UpdateDynamicSchedule the station answered
        ``Accepted``."""
        if response.get("status") != "Accepted":
            return
        if action == "UpdateDynamicSchedule":
            known = self._by_id.get(request.get("chargingProfileId", -1))
            update = _dynamic_values(request.get("scheduleUpdate"))
            if known is not None:
                self._by_id[known.profile_id] = replace(known, values={**known.values, **update})
            return
        if action != "SetChargingProfile":
            return
        profile = request.get("chargingProfile")
        if not isinstance(profile, dict) or not isinstance(profile.get("id"), int):
            return
        schedules = profile.get("chargingSchedule") or ()
        schedules = [s for s in schedules if isinstance(s, dict)]
        sent = SentProfile(
            profile_id=profile["id"],
            evse_id=request.get("evseId", 0),
            amperes=any(s.get("chargingRateUnit") == "A" for s in schedules),
            signal_curve=any(
                isinstance(p, dict) and p.get("v2xSignalWattCurve")
                for s in schedules
                for p in s.get("chargingSchedulePeriod") or ()
            ),
            values=_dynamic_values(
                next(
                    (p for s in schedules for p in s.get("chargingSchedulePeriod") or ()),
                    None,
                )
            ),
        )
        self._by_id.pop(sent.profile_id, None)
        if len(self._by_id) >= MAX_PROFILES:
            del self._by_id[next(iter(self._by_id))]
        self._by_id[sent.profile_id] = sent

    def get(self, profile_id: int) -> SentProfile | None:
        return self._by_id.get(profile_id)

    def with_signal_curve(self) -> list[SentProfile]:
        return [p for p in self._by_id.values() if p.signal_curve]
