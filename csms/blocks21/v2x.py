"""Bounding a V2G dispatch decision by what the EV said it can do (pure).

The dispatch policy decides from prices (``csms.dispatch.decide``); the EV's latest
NotifyEVChargingNeeds says whether it can discharge at all (a bidirectional transfer mode) and
at what power. A decision is never sent beyond those limits.
"""

from __future__ import annotations

from csms.dispatch import Decision, DispatchPolicy
from csms.store.charging_needs import EvChargingNeeds


def bound_decision(
    decision: Decision, needs: EvChargingNeeds | None, policy: DispatchPolicy
) -> Decision:
    """``decision`` within the EV's limits; a discharge the EV cannot do becomes a charge.

    Without reported needs (a 2.0.1 station, or no ISO 15118 EV) the decision stands: the
    station still applies its own limits.
    """
    if needs is None:
        return decision
    if decision.mode == "discharge":
        if not needs.bidirectional or needs.max_discharge_w == 0:
            return bound_decision(Decision("charge", policy.charge_w), needs, policy)
        magnitude = -decision.limit_w
        if needs.max_discharge_w is not None:
            magnitude = min(magnitude, needs.max_discharge_w)
        return Decision("discharge", -magnitude)
    limit = decision.limit_w
    if needs.max_charge_w is not None:
        limit = min(limit, needs.max_charge_w)
    return Decision("charge", limit)
