"""The CSMS's own data: frozen dataclasses that handlers build from OCPP payloads.

Domain code reads these, never raw OCPP dicts (STYLE.md rule 4). Energy is integer Wh and
power integer W, normalised once at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StationRecord:
    station_id: str
    password_hash: str
    meter_key: str | None
    created_at: str
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware: str | None = None
    last_boot_at: str | None = None
    last_seen_at: str | None = None
    max_power_w: int | None = None  # rated power for plausibility (None: max_station_power_w)
    reported_power_w: int | None = None  # the rating it reported, read when it is settled
    security_profile: int | None = None  # its own profile (None: the CSMS's)
    tolerance: str = "strict"
    password_mac: str | None = None  # the verified password's MAC (csms.credentials)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id_token: str
    type: str
    status: str  # an AuthorizationStatusEnumType value, "Accepted" for a usable token
    payment: str  # "invoice" | "ledger"
    expires_at: str | None
    created_at: str
    pseudonym: str | None = None  # the EV's keyed pseudonym, the only name a settlement carries
    personal: bytes | None = None  # encrypted personal data (temporary IDs), never in clear


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampled value, normalised: ``value`` is integer Wh for energy, W for power, % for SoC."""

    timestamp: datetime
    measurand: str
    value: int
    unit: str
    phase: str | None = None
    context: str | None = None
    location: str | None = None
    signed: str | None = None  # the signedMeterValue object, verbatim JSON, when present


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """Both energy registers at one moment (integer Wh)."""

    at: datetime
    import_wh: int
    export_wh: int


@dataclass(frozen=True, slots=True)
class TransactionEventRecord:
    """A TransactionEvent as received: the parts the CSMS acts on, plus the raw payload."""

    station_id: str
    transaction_id: str
    seq_no: int
    event_type: str  # Started | Updated | Ended
    trigger_reason: str
    offline: bool
    timestamp: datetime
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    id_token_type: str | None
    stopped_reason: str | None
    charging_state: str | None
    raw: str
    samples: tuple[MeterSample, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One row per transaction, derived from every event received for it."""

    station_id: str
    transaction_id: str
    state: str  # "active" | "ended"
    started_seen: bool
    started_at: str | None
    ended_at: str | None
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    id_token_type: str | None
    stopped_reason: str | None
    last_seq_no: int
    event_count: int
    offline_events: int
    import_wh: int = 0
    export_wh: int = 0


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """A settlement (or credit) as the CSMS keeps it, with its ledger receipt once committed."""

    settlement_id: str
    station_id: str
    transaction_id: str
    kind: str  # "settlement" | "credit"
    status: str  # "pending" | "committed" | "flagged" | "rejected"
    reason: str | None
    corrects: str | None
    ev: str | None
    import_wh: int | None
    export_wh: int | None
    amount: int | None
    currency: str | None
    body: str | None  # the signed record, canonical JSON
    tx: bytes | None  # the ledger transaction bytes
    created_at: str
    committed_at: str | None
    block_height: int | None
    block_hash: str | None
    tx_index: int | None
    receipt: str | None  # JSON of the ledger receipt


NEGATIVE_LIMIT_201 = "2.0.1-negative-limit"
DISCHARGE_MODES = ("none", NEGATIVE_LIMIT_201)


@dataclass(frozen=True, slots=True)
class StationCaps:
    """The operator's per-station settings for dispatch (None: no cap)."""

    max_charge_w: int | None = None
    max_discharge_w: int | None = None
    discharge: str = "none"  # one of DISCHARGE_MODES
    power_key: str | None = None  # 1.6: the configuration key holding the power rating
