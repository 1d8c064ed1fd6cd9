"""What a station says its EVSEs can do, read from its own reports (pure).

Three sources, converted at the boundary into ``EvseFact``s (one per EVSE; EVSE 0 is the
whole station):

- 2.0.1 and 2.1 device model, from NotifyReport (B07/B08, e.g. after GetBaseReport):
  - component ``EVSE`` (with ``evse.id``), variable ``Power``: its
    ``variableCharacteristics.maxLimit`` is the most the EVSE can deliver (W); component
    ``ChargingStation``, variable ``Power``: the same for the whole station. A power rating
    bounds charge and discharge alike.
  - component ``V2XChargingCtrlr`` (2.1's device model, EVSE-level or station-level),
    variable ``SupportedEnergyTransferModes`` (``Actual``): a list naming ``AC_BPT`` or
    ``DC_BPT`` says the EVSE can discharge; ``Enabled`` ``false`` says it may not.
- GetVariables results (``Accepted``) for the same ``V2XChargingCtrlr`` variables.
- 1.6 GetConfiguration: 1.6 defines no power rating, and chargers that have one keep it in a
  vendor key; the operator names it (``v2g stations set ID --power-key KEY`` for W,
  ``KEY:kW`` for kW) and its value becomes EVSE 0's limit.

``EvseCaps`` is what the dispatch bounds use for one EVSE: the tightest of its own and the
station's power, and whether either said it can (or cannot) discharge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

BIDIRECTIONAL_MODES = ("AC_BPT", "DC_BPT", "AC_BPT_DER", "AC_DER", "DC_BPT_DER")
MAX_POWER_W = 10_000_000  # anything above 10 MW is not a charger's rating: ignored
MAX_EVSE_ID = 128  # facts about higher EVSE ids are ignored (bounded rows per station)


@dataclass(frozen=True, slots=True)
class EvseFact:
    """One thing a station reported about one EVSE (0: the whole station)."""

    evse_id: int
    max_power_w: int | None = None
    bidirectional: bool | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class EvseCaps:
    """What the station said about one EVSE, for the dispatch bounds (None: not said)."""

    max_power_w: int | None = None
    bidirectional: bool | None = None
    power_source: str | None = None
    bidirectional_source: str | None = None


def _watts(value: Any, scale: int = 1) -> int | None:
    """A reported power as whole W (rounded down: a limit is never rounded up), or None."""
    try:
        watts = Decimal(str(value).strip()) * scale
    except (InvalidOperation, ValueError):
        return None
    if not watts.is_finite() or watts < 0 or watts > MAX_POWER_W:
        return None
    return int(watts.to_integral_value(rounding=ROUND_FLOOR))


def _evse_of(component: dict[str, Any]) -> int | None:
    evse = component.get("evse") or {}
    evse_id = evse.get("id", 0)
    if isinstance(evse_id, int) and 0 <= evse_id <= MAX_EVSE_ID:
        return evse_id
    return None


def _modes_say(value: str) -> bool:
    modes = {m.strip() for m in value.replace(";", ",").split(",") if m.strip()}
    return any(mode in modes for mode in BIDIRECTIONAL_MODES)


def _v2x_fact(evse_id: int, variable: str, value: Any, source: str) -> EvseFact | None:
    if not isinstance(value, str):
        return None
    if variable == "SupportedEnergyTransferModes":
        return EvseFact(evse_id, bidirectional=_modes_say(value), source=source)
    if variable == "Enabled" and value.strip().lower() == "false":
        return EvseFact(evse_id, bidirectional=False, source=source)
    return None


def facts_from_report(report_data: Iterable[dict[str, Any]]) -> list[EvseFact]:
    """The EVSE facts in a NotifyReport's ``reportData`` (camelCase, schema-valid)."""
    facts = []
    for item in report_data:
        component = item.get("component") or {}
        name = component.get("name")
        variable = (item.get("variable") or {}).get("name")
        evse_id = _evse_of(component)
        if evse_id is None:
            continue
        if variable == "Power" and name in ("EVSE", "ChargingStation"):
            characteristics = item.get("variableCharacteristics") or {}
            unit = characteristics.get("unit", "W")
            scale = 1000 if unit == "kW" else 1 if unit == "W" else 0
            watts = _watts(characteristics.get("maxLimit"), scale) if scale else None
            if watts is not None:
                where = "ChargingStation" if name == "ChargingStation" else f"EVSE {evse_id}"
                facts.append(
                    EvseFact(
                        0 if name == "ChargingStation" else evse_id,
                        max_power_w=watts,
                        source=f"{where} Power maxLimit (NotifyReport)",
                    )
                )
        elif name == "V2XChargingCtrlr" and variable is not None:
            for attribute in item.get("variableAttribute") or ():
                if attribute.get("type", "Actual") == "Actual":
                    fact = _v2x_fact(
                        evse_id,
                        variable,
                        attribute.get("value"),
                        f"V2XChargingCtrlr.{variable} (NotifyReport)",
                    )
                    if fact is not None:
                        facts.append(fact)
    return facts


def facts_from_variables(results: Iterable[dict[str, Any]]) -> list[EvseFact]:
    """The EVSE facts in a GetVariables answer's ``getVariableResult`` list."""
    facts = []
    for result in results:
        if result.get("attributeStatus") != "Accepted":
            continue
        if result.get("attributeType", "Actual") != "Actual":
            continue
        component = result.get("component") or {}
        variable = (result.get("variable") or {}).get("name")
        evse_id = _evse_of(component)
        if component.get("name") == "V2XChargingCtrlr" and variable and evse_id is not None:
            fact = _v2x_fact(
                evse_id,
                variable,
                result.get("attributeValue"),
                f"V2XChargingCtrlr.{variable} (GetVariables)",
            )
            if fact is not None:
                facts.append(fact)
    return facts


def parse_power_key(text: str) -> tuple[str, int]:
    """``KEY`` (W) or ``KEY:W`` / ``KEY:kW`` -> (key, W per unit); ValueError otherwise."""
    key, _, unit = text.partition(":")
    scales = {"": 1, "W": 1, "kW": 1000}
    if not key or len(key) > 50 or unit not in scales:
        raise ValueError(
            f"{text!r}: expected a configuration key of at most 50 characters, optionally"
            " followed by :W or :kW"
        )
    return key, scales[unit]


def facts_from_configuration(
    configuration_key: Iterable[dict[str, Any]], power_key: str | None
) -> list[EvseFact]:
    """The station-wide power limit in a 1.6 GetConfiguration answer, from ``power_key``."""
    if power_key is None:
        return []
    key, scale = parse_power_key(power_key)
    for entry in configuration_key:
        if entry.get("key") == key:
            watts = _watts(entry.get("value"), scale)
            if watts is not None:
                return [EvseFact(0, max_power_w=watts, source=f"configuration key {key}")]
    return []


def caps_for(facts: Iterable[EvseFact], evse_id: int | None) -> EvseCaps:
    """One EVSE's caps from the latest fact per (EVSE, kind): its own and the station's (0).

    Power: the tightest of the EVSE's and the station's. Discharge: an EVSE's own word wins
    over the station's; ``False`` from either when neither says ``True`` for the EVSE.
    """
    power: tuple[int, str] | None = None
    own: tuple[bool, str] | None = None
    station: tuple[bool, str] | None = None
    for fact in facts:
        if fact.evse_id not in (0, evse_id):
            continue
        if fact.max_power_w is not None and (power is None or fact.max_power_w < power[0]):
            power = (fact.max_power_w, fact.source)
        if fact.bidirectional is not None:
            if fact.evse_id == evse_id and evse_id != 0:
                own = (fact.bidirectional, fact.source)
            else:
                station = (fact.bidirectional, fact.source)
    said = own or station
    return EvseCaps(
        max_power_w=power[0] if power else None,
        bidirectional=said[0] if said else None,
        power_source=power[1] if power else None,
        bidirectional_source=said[1] if said else None,
    )
