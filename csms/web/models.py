"""Response and request bodies of the JSON API (they make the OpenAPI document accurate)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from csms.review import CreditRow, SessionDetail, SessionRow, sample_dict
from csms.timeutil import format_timestamp
from csms.web.chain import ChainStatus


class CreditOut(BaseModel):
    settlement_id: str
    corrects: str
    status: str
    reason: str | None
    amount: int | None = Field(description="micro-units; < 0 credits the driver")
    currency: str | None
    created_at: str
    block_height: int | None
    block_hash: str | None


class SessionOut(BaseModel):
    id: str = Field(description="the settlement id, or STATION:TRANSACTION before settlement")
    settlement_id: str | None
    station_id: str
    transaction_id: str
    evse_id: int | None
    started_at: str | None
    ended_at: str | None
    import_wh: int
    export_wh: int
    amount: int | None = Field(description="micro-units; > 0 the driver pays")
    currency: str | None
    status: str = Field(description="pending|committed|flagged|rejected, or active|ended")
    reason: str | None
    ev: str | None = Field(description="the EV's pseudonym")
    bad_evidence: bool
    block_height: int | None
    block_hash: str | None
    credits: list[CreditOut]


class SampleOut(BaseModel):
    timestamp: str
    measurand: str
    value: int
    unit: str
    phase: str | None
    context: str | None
    signed: bool


class EvidenceOut(BaseModel):
    ok: bool
    code: str | None
    reason: str | None
    meter_key_sha256: str | None
    records: list[dict[str, str]]


class BlockOut(BaseModel):
    height: int
    hash: str
    tx_index: int | None
    committed_at: str | None


class SessionDetailOut(BaseModel):
    session: SessionOut
    samples: list[SampleOut] = Field(
        description="one page of the session's samples in time order (see samples_offset)"
    )
    samples_offset: int = Field(description="the index of the page's first sample")
    samples_limit: int = Field(description="the most samples a page holds (`limit`)")
    samples_total: int = Field(description="samples stored for the session")
    samples_dropped: int = Field(
        description="samples dropped past max_samples_per_transaction (tolerant stations)"
    )
    intervals: list[dict[str, Any]]
    settlement: dict[str, Any] | None = Field(description="the signed record as stored")
    evidence: EvidenceOut
    block: BlockOut | None
    receipt: dict[str, Any] | None
    receipt_url: str | None


class ValidatorOut(BaseModel):
    address: str
    power: int
    last_vote_height: int | None


class ChainOut(BaseModel):
    available: bool
    chain_id: str | None
    height: int
    top_hash: str | None
    last_block_time: str | None = Field(description="the top block's time (RFC 3339, UTC)")
    validators: list[ValidatorOut]
    verified: bool | None
    verify_error: str | None
    settlements: dict[str, int] = Field(description="CSMS settlements by status")


class ConnectorOut(BaseModel):
    evse_id: int
    connector_id: int
    status: str


class StationOut(BaseModel):
    station_id: str
    connected: bool
    ocpp_version: str | None
    last_heartbeat: str | None = Field(description="the last message seen from the station")
    last_boot_at: str | None
    vendor: str | None
    model: str | None
    connectors: list[ConnectorOut]
    clock_skew_s: float | None = Field(
        default=None,
        description="seconds the station's clock runs ahead of the CSMS's (negative: behind)",
    )
    discharge: str = Field("", description="what the dispatcher may ask of it, and why")
    last_ocpp_version: str | None = Field(None, description="the version of its last connection")
    tolerance: str = Field("strict", description="strict | tolerant")
    security_profile: int | None = Field(None, description="its own; null: the CSMS's")
    meter_key_sha256: str | None = Field(None, description="SHA-256 of the meter key's DER")
    session_count: int = 0
    auth_failures: int = Field(0, description="failed or refused handshakes since the CSMS started")
    auth_held_s: int = Field(0, description="seconds its id is still refused after failures")
    password_pending: bool = Field(
        False,
        description="imported without a scrypt hash yet: the CSMS makes it after the station's"
        " first connection (until then only the credential key checks its password)",
    )
    process: str | None = Field(
        None,
        description="the CSMS process holding its connection, when processes share a"
        " PostgreSQL database; null: not connected, or a single CSMS on SQLite",
    )


class StartRequest(BaseModel):
    id_token: str
    token_type: str | None = Field(
        None, description="default: the token's registered type, else Central"
    )
    evse_id: int | None = None


class StopRequest(BaseModel):
    transaction_id: str


class ResetRequest(BaseModel):
    type: str = Field("Immediate", pattern="^(Immediate|OnIdle)$")
    evse_id: int | None = None


class CreditRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    amount: int | None = Field(
        None, gt=0, description="micro-units credited to the driver; omitted: full reversal"
    )


class StationEventOut(BaseModel):
    id: int
    action: str = Field(description="the OCPP action the station sent, e.g. NotifyEvent")
    evse_id: int | None
    summary: str = Field(description="one line saying what it reported")
    received_at: str
    payload: dict[str, Any] = Field(description="the message as received (camelCase)")


class ActionOut(BaseModel):
    station_id: str
    action: str
    response: dict[str, Any]


class OcppCallOut(BaseModel):
    station_id: str
    action: str
    request: dict[str, Any]  # as sent: a charging profile after clamping to the bounds
    response: dict[str, Any]  # the station's answer
    clamped: list[str]  # what the bounds changed in the request, one line each


class ResettleOut(BaseModel):
    settlement_id: str
    status: str  # pending: settled now, awaiting commit; flagged: still fails
    reason: str | None


class CreditOutcomeOut(BaseModel):
    credit_id: str
    corrects: str
    amount: int
    status: str


def credit_out(credit: CreditRow) -> CreditOut:
    return CreditOut(**{name: getattr(credit, name) for name in CreditOut.model_fields})


def session_out(row: SessionRow) -> SessionOut:
    data = {name: getattr(row, name) for name in SessionOut.model_fields if name != "credits"}
    return SessionOut(**data, credits=[credit_out(c) for c in row.credits])


def detail_out(detail: SessionDetail, receipt_url: str | None) -> SessionDetailOut:
    settlement = detail.settlement
    block = None
    if settlement is not None and settlement.block_height is not None:
        block = BlockOut(
            height=settlement.block_height,
            hash=settlement.block_hash or "",
            tx_index=settlement.tx_index,
            committed_at=settlement.committed_at,
        )
    evidence = detail.evidence
    return SessionDetailOut(
        session=session_out(detail.row),
        samples=[SampleOut(**sample_dict(s)) for s in detail.samples],
        samples_offset=detail.page.offset,
        samples_limit=detail.page.limit,
        samples_total=detail.page.total,
        samples_dropped=detail.page.dropped,
        intervals=detail.intervals,
        settlement=detail.body,
        evidence=EvidenceOut(
            ok=evidence.ok,
            code=evidence.code,
            reason=evidence.reason,
            meter_key_sha256=evidence.meter_key_sha256,
            records=[{"nature": n, "sha256": h} for n, h in evidence.records],
        ),
        block=block,
        receipt=detail.receipt,
        receipt_url=receipt_url if detail.receipt is not None else None,
    )


def chain_out(status: ChainStatus, counts: dict[str, int]) -> ChainOut:
    return ChainOut(
        available=status.available,
        chain_id=status.chain_id,
        height=status.height,
        top_hash=status.top_hash,
        last_block_time=None
        if status.top_time_ms is None
        else format_timestamp(datetime.fromtimestamp(status.top_time_ms / 1000, UTC)),
        validators=[
            ValidatorOut(address=v.address, power=v.power, last_vote_height=v.last_vote_height)
            for v in status.validators
        ],
        verified=status.verified,
        verify_error=status.verify_error,
        settlements=counts,
    )
