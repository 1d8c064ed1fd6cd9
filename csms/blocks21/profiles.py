"""OCPP 2.1 charging schedule periods per phase (pure).

In a 2.1 ``ChargingSchedulePeriodType``, ``limit``, ``setpoint`` and ``dischargeLimit`` are the
sum over all phases unless ``<field>_L2`` and ``<field>_L3`` are given, in which case the plain
field is phase L1. The spec spells these with an underscore and a capital L
(``dischargeLimit_L2``); the ``ocpp`` 2.1.0 library's snake/camel conversion turns them into
``dischargeLimitL2``, which the schema refuses. The CSMS builds and sends camelCase dicts
itself, so the names here are the spec's, verbatim.
"""

from __future__ import annotations

from typing import Any

PHASED_FIELDS = ("limit", "setpoint", "dischargeLimit")


def split_phases(period: dict[str, Any], phases: int = 3) -> dict[str, Any]:
    """The same period with each phased field split over ``phases`` (2 or 3) phases.

    Integer W stay integers and the phases add up to the total exactly (L1 takes the rest).
    """
    if phases not in (2, 3):
        raise ValueError("a per-phase split needs 2 or 3 phases")
    result = dict(period)
    for name in PHASED_FIELDS:
        total = period.get(name)
        if total is None:
            continue
        if not isinstance(total, int) or isinstance(total, bool):
            raise ValueError(f"{name} must be integer W to split, got {total!r}")
        share, rest = divmod(abs(total), phases)
        sign = -1 if total < 0 else 1
        result[name] = sign * (share + rest)
        result[f"{name}_L2"] = sign * share
        if phases == 3:
            result[f"{name}_L3"] = sign * share
    result["numberPhases"] = phases
    return result
