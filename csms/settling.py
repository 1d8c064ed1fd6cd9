"""Closing a session into a settlement: evidence check, pricing, signing (pure, no I/O).

Called inside the database transaction that stores a session's Ended event, so the signed
settlement and its outbox entry are written together with the session's close (DESIGN.md,
"Data flow", step 6). A session whose evidence does not hold up is never settled silently:
it becomes a *flagged* settlement row carrying the reason, for an operator to review.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from csms.evidence import check_evidence, decode_signed_meter_data, parse_public_key
from csms.identity import PseudonymKey, RegisteredToken, ev_pseudonym
from csms.model import MeterSample, SessionRecord, StationRecord, TokenRecord
from csms.settlement import (
    DEFAULT_MAX_POWER_W,
    SessionFacts,
    SettlementError,
    build_settlement,
    settlement_id_for,
)
from csms.tariffs import Tariff
from csms.timeutil import parse_timestamp
from ledger.keys import SigningKey
from ledger.tx import sign_tx

Status = Literal["pending", "flagged"]


@dataclass(frozen=True, slots=True)
class SettlementSetup:
    """What the CSMS settles with: who it is, its signing key, the tariff, the pseudonym key."""

    operator: str
    chain_id: str
    signer: SigningKey
    tariff: Tariff
    pseudonym_key: PseudonymKey
    slack: timedelta = timedelta(seconds=0)
    max_power_w: int = DEFAULT_MAX_POWER_W  # plausibility: energy per interval (settlement)


@dataclass(frozen=True, slots=True)
class SettlementOutcome:
    """A settlement ready for the outbox (``pending``) or a session flagged for review."""

    settlement_id: str
    status: Status
    reason: str | None
    ev: str | None
    body: dict[str, Any] | None
    tx: bytes | None

    @property
    def amount(self) -> int | None:
        return None if self.body is None else int(self.body["amount"])


def evse_label(station_id: str, evse_id: int | None) -> str:
    return f"{station_id}*{evse_id if evse_id is not None else 0}"


def signed_records(samples: Sequence[MeterSample]) -> tuple[list[str], list[str]]:
    """The OCMF record texts and the public keys that travelled with them, in sample order."""
    texts: list[str] = []
    keys: list[str] = []
    for sample in samples:
        if sample.signed is None:
            continue
        signed = json.loads(sample.signed)
        if signed.get("encodingMethod", "OCMF") != "OCMF":
            continue
        try:
            texts.append(decode_signed_meter_data(signed["signedMeterData"]))
        except (KeyError, ValueError):
            texts.append(str(signed.get("signedMeterData", "")))
        if signed.get("publicKey"):
            keys.append(signed["publicKey"])
    return texts, keys


def ev_identity(session: SessionRecord, token: TokenRecord | None, key: PseudonymKey) -> str:
    """The EV's pseudonym: as registered with its token, else keyed from the token itself."""
    if token is not None and token.pseudonym:
        return token.pseudonym
    assert session.id_token is not None and session.id_token_type is not None
    return ev_pseudonym(RegisteredToken(session.id_token, session.id_token_type, "invoice"), key)


def settle_session(
    setup: SettlementSetup,
    session: SessionRecord,
    samples: Sequence[MeterSample],
    *,
    meter_key: str | None,
    token: TokenRecord | None,
    max_power_w: int | None = None,
) -> SettlementOutcome:
    """Turn an ended session into a signed settlement, or flag it with the reason.

    ``max_power_w``: the station's rated power for the plausibility check (None: the setup's
    ``max_station_power_w``).
    """
    settlement_id = settlement_id_for(
        setup.operator, evse_label(session.station_id, session.evse_id), session.transaction_id
    )

    def flag(code: str, reason: str, ev: str | None = None) -> SettlementOutcome:
        return SettlementOutcome(settlement_id, "flagged", f"{code}: {reason}", ev, None, None)

    if session.id_token is None or session.id_token_type is None:
        return flag("no_identity", "the session carries no idToken")
    ev = ev_identity(session, token, setup.pseudonym_key)
    if meter_key is None:
        return flag("no_meter_key", "the station has no registered meter key", ev)
    texts, carried = signed_records(samples)
    if not texts:
        return flag("no_evidence", "no signed meter values were received", ev)
    window = None
    if session.started_at and session.ended_at and session.started_seen:
        margin = timedelta(minutes=5)
        window = (
            parse_timestamp(session.started_at) - margin,
            parse_timestamp(session.ended_at) + margin,
        )
    try:
        public_key = parse_public_key(meter_key)
    except Exception as exc:  # a registry value that is not a key: review, not a crash
        return flag("bad_meter_key", f"the registered meter key does not parse: {exc}", ev)
    check = check_evidence(
        texts,
        public_key,
        expected_id=session.id_token,
        carried_keys=carried,
        window=window,
    )
    facts = SessionFacts(
        settlement_id=settlement_id,
        transaction_id=session.transaction_id,
        operator=setup.operator,
        evse_id=evse_label(session.station_id, session.evse_id),
        ev=ev,
        payment="ledger" if token is not None and token.payment == "ledger" else "invoice",
    )
    try:
        body = build_settlement(
            check,
            setup.tariff,
            facts,
            slack=setup.slack,
            max_power_w=max_power_w or setup.max_power_w,
        )
    except SettlementError as exc:
        return flag(exc.code, exc.reason, ev)
    tx = sign_tx(body, setup.signer, setup.chain_id)
    return SettlementOutcome(settlement_id, "pending", None, ev, body, tx.data)


def rated_power(station: StationRecord, default_w: int) -> int:
    """The power a station's energy is held to before signing: the operator's setting
    (``v2g stations set --max-power-w``), else the rating the station reported when it is
    lower than ``default_w`` (``max_station_power_w``; a report never loosens it), else that."""
    if station.max_power_w is not None:
        return station.max_power_w
    if station.reported_power_w is not None and 0 < station.reported_power_w < default_w:
        return station.reported_power_w
    return default_w


def session_closer(
    setup: SettlementSetup,
) -> Callable[
    [SessionRecord, list[MeterSample], StationRecord | None, TokenRecord | None], SettlementOutcome
]:
    """The store's hook: settle an ended session with this setup."""

    def close(
        session: SessionRecord,
        samples: list[MeterSample],
        station: StationRecord | None,
        token: TokenRecord | None,
    ) -> SettlementOutcome:
        meter_key = station.meter_key if station is not None else None
        power = None if station is None else rated_power(station, setup.max_power_w)
        return settle_session(
            setup, session, samples, meter_key=meter_key, token=token, max_power_w=power
        )

    return close
