"""What a dispatch decision may ask of one EV: the tightest of every declared limit (pure).

The price policy (``csms.dispatch.decide``) says charge or discharge; before anything is sent
the decision is bounded by, tightest first:

- the EV's latest NotifyEVChargingNeeds (2.0.1 and 2.1; ``v2xChargingParameters`` on 2.1):
  ``maxChargePower`` / DC ``evMaxPower``, ``maxDischargePower``, ``minDischargePower``, and
  whether it asked for or offers a bidirectional (``*_BPT``) transfer;
- the EVSE's own power rating as the station reported it (``csms.evse_limits``: the device
  model's EVSE or ChargingStation ``Power`` maxLimit, or a 1.6 configuration key);
- the operator's per-station caps (``v2g stations set ID --max-charge-w/--max-discharge-w``);
- the policy's own charge and discharge powers (the dispatcher's; none for a profile an
  operator sends).

Discharge is only asked of an EV that said it can, on an EVSE that did not say it cannot
(``V2XChargingCtrlr`` without a BPT mode, or disabled): on 2.1 an EV whose needs name a BPT
transfer and do not say ``maxDischargePower: 0``; on 2.0.1 (which has no way to say
discharge) only when the station reported a BPT mode in ``V2XChargingCtrlr.
SupportedEnergyTransferModes`` or the operator declared it takes a negative limit as discharge
(``--discharge 2.0.1-negative-limit``); never on 1.6. Otherwise the EV charges, and
``Limits.charge_only_reason`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from csms.dispatch import Decision, DispatchPolicy
from csms.evse_limits import EvseCaps, EvseFact
from csms.model import DISCHARGE_MODES, NEGATIVE_LIMIT_201, StationCaps
from csms.store.charging_needs import EvChargingNeeds

__all__ = [
    "DISCHARGE_MODES",
    "NEGATIVE_LIMIT_201",
    "Limits",
    "StationCaps",
    "bound",
    "discharge_summary",
    "limits_for",
    "station_limits",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Magnitudes (W) a decision may use; ``max_discharge_w == 0`` means charge only."""

    max_charge_w: int
    max_discharge_w: int
    charge_only_reason: str | None = None


UNBOUNDED_W = 10_000_000  # no limit declared anywhere (an operator's profile, no caps): 10 MW


def _tightest(*values: int | None) -> int:
    return max(0, min((v for v in values if v is not None), default=UNBOUNDED_W))


def limits_for(
    version: str,
    needs: EvChargingNeeds | None,
    caps: StationCaps,
    policy: DispatchPolicy | None,
    evse: EvseCaps | None = None,
) -> Limits:
    """The limits for an EV on a station speaking OCPP ``version`` ("1.6", "2.0.1", "2.1").

    ``policy`` None: no dispatcher powers (a profile an operator sends); ``evse``: what the
    station reported about the EVSE (``csms.evse_limits``).
    """
    evse = evse or EvseCaps()
    ev_charge = needs.max_charge_w if needs is not None else None
    charge_w = policy.charge_w if policy is not None else None
    max_charge = _tightest(charge_w, ev_charge, caps.max_charge_w, evse.max_power_w)
    reason = _charge_only_reason(version, needs, caps, evse)
    if reason is None:
        ev_discharge = needs.max_discharge_w if needs is not None else None
        discharge_w = policy.discharge_w if policy is not None else None
        max_discharge = _tightest(discharge_w, ev_discharge, caps.max_discharge_w, evse.max_power_w)
        minimum = needs.min_discharge_w if needs is not None else None
        if max_discharge == 0:
            reason = "the discharge limit is 0 W"
        elif minimum is not None and minimum > max_discharge:
            reason = (
                f"the EV discharges at no less than {minimum} W, above the {max_discharge} W cap"
            )
        if reason is None:
            return Limits(max_charge, max_discharge)
    return Limits(max_charge, 0, reason)


def station_limits(version: str, caps: StationCaps, evse: EvseCaps | None = None) -> Limits:
    """The limits of a station-wide maximum profile (1.6 ChargePointMaxProfile, 2.x
    ChargingStationMaxProfile): it asks no EV anything, so only the station's rating and the
    operator's caps bound it, and it may allow discharge wherever the station may discharge."""
    evse = evse or EvseCaps()
    max_charge = _tightest(caps.max_charge_w, evse.max_power_w)
    if version == "2.1":
        reason = (
            _charge_only_reason(version, None, caps, evse) if evse.bidirectional is False else None
        )
    else:
        reason = _charge_only_reason(version, None, caps, evse)
    if reason is not None:
        return Limits(max_charge, 0, reason)
    return Limits(max_charge, _tightest(caps.max_discharge_w, evse.max_power_w))


def _charge_only_reason(
    version: str, needs: EvChargingNeeds | None, caps: StationCaps, evse: EvseCaps
) -> str | None:
    if version in ("2.0.1", "2.1") and evse.bidirectional is False:
        return f"the station reports no bidirectional transfer ({evse.bidirectional_source})"
    if version == "2.1":
        if needs is None:
            return "the EV has not reported its charging needs"
        if not needs.bidirectional:
            return f"the EV asked for {needs.requested_transfer}, not a bidirectional transfer"
        if needs.max_discharge_w == 0:
            return "the EV declared maxDischargePower 0"
        return None
    if version == "2.0.1":
        if caps.discharge != NEGATIVE_LIMIT_201 and not evse.bidirectional:
            return (
                "OCPP 2.0.1 has no discharge; the station has reported no AC_BPT or DC_BPT in"
                " V2XChargingCtrlr.SupportedEnergyTransferModes and has not been declared to"
                f" take a negative limit (v2g stations set ID --discharge {NEGATIVE_LIMIT_201})"
            )
        if needs is not None and needs.max_discharge_w == 0:
            return "the EV declared maxDischargePower 0"
        return None
    return f"OCPP {version} dispatch is charge only"


def bound(decision: Decision, limits: Limits) -> Decision:
    """``decision`` within ``limits``; a discharge that is not allowed becomes a full charge."""
    if decision.mode == "discharge":
        if limits.max_discharge_w <= 0:
            return Decision("charge", limits.max_charge_w)
        return Decision("discharge", -min(-decision.limit_w, limits.max_discharge_w))
    return Decision("charge", max(0, min(decision.limit_w, limits.max_charge_w)))


def discharge_summary(
    version: str | None, caps: StationCaps, facts: Sequence[EvseFact] = ()
) -> str:
    """What the dispatcher may ask of a station, and why, for operators (dashboard and API).

    ``facts``: what the station reported about its EVSEs (``csms.evse_limits``); one EVSE
    reported able to discharge is enough to say the station may.
    """
    said = [f for f in facts if f.bidirectional is not None]
    able = next((f for f in said if f.bidirectional), None)
    if able is not None:
        evse = EvseCaps(bidirectional=True, bidirectional_source=able.source)
    elif said:
        evse = EvseCaps(bidirectional=False, bidirectional_source=said[0].source)
    else:
        evse = EvseCaps()
    parts = []
    short = version.removeprefix("ocpp") if version else None
    reason = _charge_only_reason(short, None, caps, evse) if short else None
    if short == "2.1" and evse.bidirectional is not False:
        parts.append("discharge as each EV declares (NotifyEVChargingNeeds)")
    elif short is not None and reason is not None:
        parts.append(f"charge only: {reason}")
    elif short == "2.0.1" and caps.discharge == NEGATIVE_LIMIT_201:
        parts.append("discharge by a negative limit (declared for this station)")
    elif short == "2.0.1":
        parts.append(f"discharge by a negative limit (reported: {evse.bidirectional_source})")
    elif caps.discharge == NEGATIVE_LIMIT_201 or evse.bidirectional:
        parts.append("a 2.0.1 connection may discharge by a negative limit")
    if caps.max_charge_w is not None:
        parts.append(f"charge at most {caps.max_charge_w} W")
    if caps.max_discharge_w is not None:
        parts.append(f"discharge at most {caps.max_discharge_w} W")
    for fact in facts:
        if fact.max_power_w is not None:
            where = f"EVSE {fact.evse_id}" if fact.evse_id else "the station"
            parts.append(f"{where} rated {fact.max_power_w} W ({fact.source})")
    return "; ".join(parts)
