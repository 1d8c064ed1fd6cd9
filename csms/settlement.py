"""Settlement building: verified meter readings + tariff -> the canonical settlement record.

Energy per tariff interval comes from **register deltas** between signed readings (Begin,
Intermediate at each tariff boundary, End), never from power samples. Amounts use the one
rounding rule in ``ledger.amounts``. The record has exactly the fields the ledger's schema
asks for (DESIGN.md, "The settlement record"), integers for every energy, price and amount;
it names the EV only by its pseudonym and the meter records only by their SHA-256.

Signing goes through ``ledger.tx.sign_tx`` (canonical encoding, domain tag and chain id).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from csms.errors import CsmsError
from csms.evidence import EvidenceCheck
from csms.tariffs import Tariff, TariffError
from csms.timeutil import format_timestamp
from ledger.amounts import PricedInterval, round_half_even_div, settlement_amount
from ledger.keys import SigningKey
from ledger.tx import CREDIT, SCHEMA_VERSION, SETTLEMENT, sign_tx
from ledger.types import Tx

Payment = Literal["invoice", "ledger"]


class SettlementError(CsmsError):
    """A session cannot be settled as it stands; ``code`` names why (for review flags)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class RegisterSample(Protocol):
    """Anything with a time and both registers in Wh (signed snapshots, periodic samples)."""

    @property
    def at(self) -> datetime: ...

    @property
    def import_wh(self) -> int: ...

    @property
    def export_wh(self) -> int: ...


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the CSMS knows of a session beyond the meter: who, where, how it is paid."""

    settlement_id: str
    transaction_id: str
    operator: str
    evse_id: str
    ev: str  # the pseudonym, never a token
    payment: Payment


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy moved in one tariff interval and the prices in force (micro-units per kWh)."""

    start: datetime
    import_wh: int
    export_wh: int
    import_price: int
    export_price: int


def settlement_id_for(operator: str, evse_id: str, transaction_id: str) -> str:
    """A stable id for a session's settlement, so a retried close yields the same id."""
    digest = hashlib.sha256(f"{operator}\x00{evse_id}\x00{transaction_id}".encode()).hexdigest()
    return f"stl-{digest[:32]}"


DEFAULT_MAX_POWER_W = 350_000  # a station's rated power unless configured (max_station_power_w)
POWER_MARGIN = Decimal("0.10")  # plausibility allows this much above the rated power
ENERGY_MARGIN_WH = 1  # and one Wh for register rounding


def plausible_energy(wh: int, seconds: float, max_power_w: int) -> bool:
    """At most ``max_power_w`` (plus POWER_MARGIN and ENERGY_MARGIN_WH) over ``seconds``."""
    limit = Decimal(max_power_w) * (1 + POWER_MARGIN) * Decimal(str(seconds)) / 3600
    return wh <= limit + ENERGY_MARGIN_WH


def interval_energy(
    readings: Sequence[RegisterSample],
    tariff: Tariff,
    *,
    slack: timedelta = timedelta(0),
    max_power_w: int = DEFAULT_MAX_POWER_W,
) -> list[IntervalEnergy]:
    """Per-tariff-interval energy from register deltas between consecutive readings.

    Every tariff boundary inside the session needs a reading at it: a reading within
    ``slack`` of a boundary counts as taken at the boundary (meters sign a little late);
    a boundary with no reading raises ``SettlementError("missing_intermediate")``.
    """
    if len(readings) < 2:
        raise SettlementError("no_readings", "a settlement needs a Begin and an End reading")
    first, last = readings[0].at, readings[-1].at
    boundaries = tariff.boundaries(first - slack, last + slack)
    times = [_snap(r.at, boundaries, slack) for r in readings]
    merged: dict[datetime, IntervalEnergy] = {}
    for (a, b), (ta, tb) in zip(
        itertools.pairwise(readings), itertools.pairwise(times), strict=True
    ):
        inside = [t for t in boundaries if ta < t < tb]
        if inside:
            raise SettlementError(
                "missing_intermediate",
                f"no reading at tariff boundary {format_timestamp(inside[0])}",
            )
        import_wh, export_wh = b.import_wh - a.import_wh, b.export_wh - a.export_wh
        if import_wh < 0 or export_wh < 0:
            raise SettlementError("register_backwards", f"a register decreases after {ta}")
        seconds = max(0.0, (b.at - a.at).total_seconds())
        if not plausible_energy(max(import_wh, export_wh), seconds, max_power_w):
            raise SettlementError(
                "implausible_energy",
                f"{max(import_wh, export_wh)} Wh in {seconds:.0f} s after {format_timestamp(a.at)}"
                f" is more than a rated power of {max_power_w} W allows (plus"
                f" {POWER_MARGIN:.0%} and {ENERGY_MARGIN_WH} Wh; v2g stations set --max-power-w,"
                " else max_station_power_w)",
            )
        try:
            price = tariff.price_at(ta)
        except TariffError as exc:
            raise SettlementError("no_price", str(exc)) from exc
        current = merged.get(price.start)
        if current is None:
            merged[price.start] = IntervalEnergy(
                ta, import_wh, export_wh, price.import_price, price.export_price
            )
        else:
            merged[price.start] = IntervalEnergy(
                current.start,
                current.import_wh + import_wh,
                current.export_wh + export_wh,
                current.import_price,
                current.export_price,
            )
    return sorted(merged.values(), key=lambda i: i.start)


def _snap(moment: datetime, boundaries: Sequence[datetime], slack: timedelta) -> datetime:
    near = [t for t in boundaries if abs(t - moment) <= slack]
    return min(near, key=lambda t: abs(t - moment)) if near else moment


def amount_of(intervals: Sequence[IntervalEnergy]) -> int:
    """Net amount in micro-units by the one rounding rule (> 0 the driver pays)."""
    return settlement_amount(
        PricedInterval(i.import_wh, i.export_wh, i.import_price, i.export_price) for i in intervals
    )


def build_settlement(
    check: EvidenceCheck,
    tariff: Tariff,
    facts: SessionFacts,
    *,
    slack: timedelta = timedelta(0),
    max_power_w: int = DEFAULT_MAX_POWER_W,
    corrects: str | None = None,
) -> dict[str, Any]:
    """The unsigned settlement record (or a credit record when ``corrects`` is given).

    Raises ``SettlementError`` (with the evidence's own code) when the evidence is not ok:
    such a session is flagged for review, never settled silently.
    """
    if not check.ok:
        raise SettlementError(check.code or "bad_evidence", check.reason or "evidence rejected")
    if facts.payment not in ("invoice", "ledger"):
        raise SettlementError("bad_payment", f"payment must be invoice or ledger: {facts.payment}")
    readings = check.snapshots
    intervals = interval_energy(readings, tariff, slack=slack, max_power_w=max_power_w)
    body: dict[str, Any] = {
        "type": SETTLEMENT if corrects is None else CREDIT,
        "schema": SCHEMA_VERSION,
        "settlement_id": facts.settlement_id,
        "transaction_id": facts.transaction_id,
        "operator": facts.operator,
        "evse_id": facts.evse_id,
        "ev": facts.ev,
        "start": format_timestamp(readings[0].at),
        "end": format_timestamp(readings[-1].at),
        "energy": {
            "import_wh": sum(i.import_wh for i in intervals),
            "export_wh": sum(i.export_wh for i in intervals),
        },
        "tariff": {"id": tariff.id, "sha256": tariff.sha256, "currency": tariff.currency},
        "intervals": [
            {
                "start": format_timestamp(i.start),
                "import_wh": i.import_wh,
                "export_wh": i.export_wh,
                "import_price": i.import_price,
                "export_price": i.export_price,
            }
            for i in intervals
        ],
        "amount": amount_of(intervals),
        "payment": facts.payment,
        "evidence": {
            "meter_key_sha256": check.meter_key_sha256,
            "records": [{"nature": r.nature, "sha256": r.sha256} for r in check.records],
        },
    }
    if corrects is not None:
        body["corrects"] = corrects
    return body


def sign_settlement(body: dict[str, Any], key: SigningKey, chain_id: str) -> Tx:
    """Sign with the CSMS key: the ledger transaction whose bytes go to the outbox."""
    return sign_tx(body, key, chain_id)


@dataclass(frozen=True, slots=True)
class RunningCost:
    """The running cost of one transaction so far: the last register readings and the amount.

    Kept per transaction and advanced by each event's own readings (``advance``), so the work
    per event does not grow with the samples already taken. ``milli`` is exact (milli-units);
    ``amount`` rounds it once, as the settlement does.
    """

    at: datetime | None = None
    import_wh: int | None = None
    export_wh: int | None = None
    milli: int = 0

    @property
    def amount(self) -> int:
        return round_half_even_div(self.milli, 1000)

    def advance(
        self, at: datetime, import_wh: int | None, export_wh: int | None, tariff: Tariff | None
    ) -> RunningCost:
        """Fold one reading in (a missing register is unchanged; no tariff: nothing priced).

        Each delta is priced at the previous reading's time, so a tariff boundary between two
        readings is attributed to the earlier price. Registers only grow: a reading lower than
        the last one (late or out of order) adds nothing and does not move the register back.
        """
        if self.at is None:
            return RunningCost(at, import_wh, export_wh, 0)
        d_import = _delta(self.import_wh, import_wh)
        d_export = _delta(self.export_wh, export_wh)
        milli = self.milli
        if (d_import or d_export) and tariff is not None:
            try:
                price = tariff.price_at(self.at)
            except TariffError:
                price = None
            if price is not None:
                milli += d_import * price.import_price - d_export * price.export_price
        return RunningCost(
            max(self.at, at),
            _high(self.import_wh, import_wh),
            _high(self.export_wh, export_wh),
            milli,
        )


def _delta(last: int | None, new: int | None) -> int:
    return 0 if last is None or new is None else max(0, new - last)


def _high(last: int | None, new: int | None) -> int | None:
    return new if last is None else last if new is None else max(last, new)


def running_cost(samples: Sequence[RegisterSample], tariff: Tariff) -> int:
    """Cost so far (micro-units) for CostUpdated, from register samples taken while running.

    An estimate between samples (see ``RunningCost.advance``); the final amount comes from the
    signed readings only.
    """
    state = RunningCost()
    for sample in samples:
        state = state.advance(sample.at, sample.import_wh, sample.export_wh, tariff)
    return state.amount


def total_cost(amount: int) -> float:
    """Micro-units as the currency amount OCPP's ``totalCost`` carries (e.g. 1.2 for 1200000)."""
    return float(Decimal(amount).scaleb(-6))
