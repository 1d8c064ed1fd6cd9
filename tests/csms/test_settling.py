"""Closing a session into a settlement inside the store, and the outbox's exactly-once drain."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from chargepoint.meter import (
    public_key_pem,
)
from csms.identity import PseudonymKey
from csms.model import TokenRecord, TransactionEventRecord
from csms.outbox import LedgerReceipt, OutboxWorker
from csms.settling import SettlementSetup, session_closer
from csms.store.sqlite import CsmsStore
from csms.tariffs import parse_tariff
from csms.timeutil import format_timestamp
from ledger.keys import generate_key
from tests.csms.signed_session import BOUNDARY, T0, TARIFF, SignedSession

STATION = "CS-SETTLE"
TOKEN = "04AABBCCDDEEFF"


class Session(SignedSession):
    """A meter driven through charge-then-discharge, producing the events a station sends."""

    def __init__(self) -> None:
        super().__init__(STATION, "tx-42", TOKEN)

    def event(self, event_type: str, at: datetime, nature: str) -> TransactionEventRecord:
        return self.record(event_type, at, self.registers(at, self.signed(nature, at)))

    def events(self) -> list[TransactionEventRecord]:
        started = self.event("Started", T0, "Begin")
        self.flow(4_000, 0, T0)  # 16:30-17:00 charge 4 kWh at 0.30
        middle = self.event("Updated", BOUNDARY, "Intermediate")
        self.flow(500, 3_000, BOUNDARY)  # 17:00-17:45 import 0.5 kWh at 0.40, export 3 kWh at 0.50
        ended = self.event("Ended", BOUNDARY + timedelta(minutes=45), "End")
        return [started, middle, ended]


def expected_amount() -> int:
    milli = Decimal(4_000 * 300_000 + 500 * 400_000 - 3_000 * 500_000) / 1000
    return int(milli.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@pytest.fixture
async def store(database: str) -> AsyncIterator[CsmsStore]:
    store = await CsmsStore.open(database)
    yield store
    await store.close()


async def prepare(store: CsmsStore, session: Session) -> SettlementSetup:
    setup = SettlementSetup(
        operator="OP-TEST",
        chain_id="chain-test",
        signer=generate_key(),
        tariff=parse_tariff(TARIFF, source="tariff.yaml"),
        pseudonym_key=PseudonymKey(1, b"k" * 32),
    )
    pem = public_key_pem(session.key).decode()
    await store.add_station(STATION, "scrypt$x", "2026-11-25T00:00:00Z", pem)
    await store.add_token(
        TokenRecord(TOKEN, "ISO14443", "Accepted", "ledger", None, "2026-01-01", "v1:abc")
    )

    store.session_closer = session_closer(setup)
    return setup


async def test_ended_session_is_settled_once_with_its_outbox_entry(store: CsmsStore) -> None:
    session = Session()
    await prepare(store, session)
    events = session.events()
    for event in [*events, events[-1]]:  # the Ended twice
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    settlements = await store.list_settlements()
    assert len(settlements) == 1
    settled = settlements[0]
    assert settled.status == "pending" and settled.reason is None
    assert settled.amount == expected_amount() == -100_000  # the driver is paid
    assert (settled.import_wh, settled.export_wh) == (4_500, 3_000)
    assert settled.ev == "v1:abc"
    body = json.loads(settled.body or "{}")
    assert [i["import_wh"] for i in body["intervals"]] == [4_000, 500]
    assert body["payment"] == "ledger" and body["transaction_id"] == "tx-42"
    assert await store.outbox_size() == 1


async def test_tampered_record_flags_the_session_for_review(store: CsmsStore) -> None:
    session = Session()
    await prepare(store, session)
    events = session.events()
    signed = json.loads(events[2].samples[0].signed or "{}")
    import base64

    text = base64.b64decode(signed["signedMeterData"]).decode()
    signed["signedMeterData"] = base64.b64encode(text.replace('"RV":', '"RV": ').encode()).decode()
    tampered = replace(
        events[2],
        samples=(replace(events[2].samples[0], signed=json.dumps(signed)), events[2].samples[1]),
    )
    for event in [events[0], events[1], tampered]:
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    settled = await store.settlement_for_session(STATION, "tx-42")
    assert settled is not None and settled.status == "flagged"
    assert settled.reason is not None and settled.reason.startswith("bad_signature")
    assert settled.tx is None and await store.outbox_size() == 0


async def test_missing_meter_key_is_flagged_not_settled(store: CsmsStore) -> None:
    session = Session()
    await prepare(store, session)
    await store.update_station_secret(STATION, "scrypt$x", None)
    await store.execute_write("UPDATE stations SET meter_key = NULL")
    for event in session.events():
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    settled = await store.settlement_for_session(STATION, "tx-42")
    assert settled is not None and settled.status == "flagged"
    assert (settled.reason or "").startswith("no_meter_key")


class Ledger:
    """A ledger double: commits each settlement id once and answers repeats with the receipt."""

    def __init__(self, fail_after_commit: int = 0) -> None:
        self.committed: dict[bytes, LedgerReceipt] = {}
        self.calls = 0
        self.fail_after_commit = fail_after_commit

    async def submit(self, tx: bytes) -> LedgerReceipt:
        self.calls += 1
        if tx not in self.committed:
            self.committed[tx] = LedgerReceipt(len(self.committed) + 1, "ab" * 32, 0, {})
            if self.fail_after_commit:
                self.fail_after_commit -= 1
                raise ConnectionError("lost the answer")  # committed, but the CSMS never hears
        return self.committed[tx]

    async def receipt_document(self, settlement_id: str) -> dict[str, object] | None:
        return {"settlement_id": settlement_id}


async def test_outbox_survives_restart_and_commits_exactly_once(database: str) -> None:
    path = database
    store = await CsmsStore.open(path)
    session = Session()
    await prepare(store, session)
    for event in session.events():
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    await store.close()  # the CSMS stops before submitting anything

    store = await CsmsStore.open(path)
    ledger = Ledger(fail_after_commit=1)
    clock = lambda: T0 + timedelta(hours=2)  # noqa: E731
    worker = OutboxWorker(store, ledger, clock, retry_base=0.0)
    assert await worker.run_once() == 0  # committed on the ledger, answer lost
    assert await store.outbox_size() == 1
    assert await worker.run_once() == 1  # the retry gets the existing receipt
    assert await worker.run_once() == 0
    assert len(ledger.committed) == 1 and ledger.calls == 2
    settled = (await store.list_settlements())[0]
    assert settled.status == "committed" and settled.block_height == 1
    assert json.loads(settled.receipt or "{}") == {"settlement_id": settled.settlement_id}
    assert await store.outbox_size() == 0
    await store.close()


async def test_a_session_flagged_under_a_wrong_key_is_resettled_once_the_key_is_fixed(
    store: CsmsStore, caplog: pytest.LogCaptureFixture
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from chargepoint.meter import public_key_pem as pem_of
    from csms.errors import RegistryError

    caplog.set_level("INFO", logger="csms")
    session = Session()
    await prepare(store, session)
    wrong = pem_of(ec.generate_private_key(ec.SECP256R1())).decode()
    await store.set_meter_key(STATION, wrong)
    for event in session.events():
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    flagged = await store.settlement_for_session(STATION, "tx-42")
    assert flagged is not None and flagged.status == "flagged"
    assert any(
        r.levelname == "INFO" and "settlement flagged" in r.getMessage() for r in caplog.records
    )
    # still the wrong key: it stays flagged, and the attempt is logged
    again = await store.resettle(STATION, "tx-42", by="bob", at="2026-11-26T09:00:00Z")
    assert again.status == "flagged" and await store.outbox_size() == 0
    await store.set_meter_key(STATION, pem_of(session.key).decode())
    outcome = await store.resettle(STATION, "tx-42", by="alice", at="2026-11-26T10:00:00Z")
    assert outcome.status == "pending"
    settled = await store.settlement_for_session(STATION, "tx-42")
    assert settled is not None and settled.status == "pending" and settled.reason is None
    assert settled.settlement_id == flagged.settlement_id
    assert settled.amount == expected_amount() and await store.outbox_size() == 1
    log = await store.resettlements(settled.settlement_id)
    assert [(who, result) for who, _, result, _ in log] == [
        ("bob", "flagged"),
        ("alice", "pending"),
    ]
    with pytest.raises(RegistryError, match="only a flagged one"):
        await store.resettle(STATION, "tx-42", by="alice", at="2026-11-26T11:00:00Z")


async def test_a_session_ending_ahead_of_the_csms_clock_is_flagged(store: CsmsStore) -> None:
    session = Session()
    await prepare(store, session)
    for event in session.events():  # all received at T0: the end lies 75 min ahead
        await store.record_transaction_event(event, format_timestamp(T0))
    settled = await store.settlement_for_session(STATION, "tx-42")
    assert settled is not None and settled.status == "flagged" and settled.tx is None
    assert (settled.reason or "").startswith("clock_ahead: the session ends 4500 s after")
    assert await store.clock_skew(STATION) == 30 * 60  # the median event runs 30 min ahead


async def test_a_session_overlapping_another_on_the_same_evse_is_flagged(
    store: CsmsStore,
) -> None:
    session = Session()
    await prepare(store, session)
    events = session.events()
    for event in events:
        at = event.timestamp - timedelta(seconds=10)  # the station's clock runs 10 s ahead
        await store.record_transaction_event(event, format_timestamp(at))
    first = await store.settlement_for_session(STATION, "tx-42")
    assert first is not None and first.status == "pending"
    assert await store.clock_skew(STATION) == 10
    for event in events:  # the same EVSE, the same hours, another transaction
        await store.record_transaction_event(
            replace(event, transaction_id="tx-43"), format_timestamp(event.timestamp)
        )
    second = await store.settlement_for_session(STATION, "tx-43")
    assert second is not None and second.status == "flagged"
    assert (second.reason or "").startswith("overlapping: EVSE 1 also ran tx-42")


async def test_a_session_beyond_the_stations_rated_power_is_flagged_not_signed(
    store: CsmsStore,
) -> None:
    """4 kWh in the first 30 minutes is 8 kW: implausible for a station rated 5 kW, although
    within the CSMS's default of 350 kW; without the rating it settles."""
    from csms.errors import RegistryError

    session = Session()
    await prepare(store, session)
    await store.set_max_power(STATION, 5_000)
    assert (await store.get_station(STATION)).max_power_w == 5_000  # type: ignore[union-attr]
    for event in session.events():
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    flagged = await store.settlement_for_session(STATION, "tx-42")
    assert flagged is not None and flagged.status == "flagged" and flagged.body is None
    assert (flagged.reason or "").startswith("implausible_energy: 4000 Wh in 1800 s")
    assert "rated power of 5000 W" in (flagged.reason or "")
    assert await store.outbox_size() == 0
    await store.set_max_power(STATION, None)
    outcome = await store.resettle(STATION, "tx-42", by="alice", at="2026-11-26T10:00:00Z")
    assert outcome.status == "pending" and await store.outbox_size() == 1
    with pytest.raises(RegistryError, match="> 0"):
        await store.set_max_power(STATION, 0)
    with pytest.raises(RegistryError, match="not registered"):
        await store.set_max_power("CS-NONE", 11_000)


async def test_a_reported_rating_tightens_the_check_and_the_operators_setting_wins(
    store: CsmsStore,
) -> None:
    """A station that reported 5 kW (device model or 1.6 key) is held to it; a report above
    max_station_power_w never loosens the check; the operator's --max-power-w overrides both."""
    session = Session()
    await prepare(store, session)
    await store.execute_write(
        "INSERT INTO evse_capabilities (station_id, evse_id, kind, value, source, updated_at)"
        " VALUES (?, 0, 'power', 5000, 'test', ?)",
        (STATION, "2026-11-25T00:00:00Z"),
    )
    for event in session.events():
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    flagged = await store.settlement_for_session(STATION, "tx-42")
    assert flagged is not None and flagged.status == "flagged"
    assert "rated power of 5000 W" in (flagged.reason or "")
    await store.set_max_power(STATION, 22_000)  # the operator knows better
    outcome = await store.resettle(STATION, "tx-42", by="alice", at="2026-11-26T10:00:00Z")
    assert outcome.status == "pending"


def test_a_reported_rating_never_loosens_the_default() -> None:
    from csms.model import StationRecord
    from csms.settling import rated_power

    station = StationRecord(STATION, "h", None, "t")
    assert rated_power(station, 350_000) == 350_000
    assert rated_power(replace(station, reported_power_w=11_000), 350_000) == 11_000
    assert rated_power(replace(station, reported_power_w=10**9), 350_000) == 350_000
    assert rated_power(replace(station, reported_power_w=11_000, max_power_w=50_000), 1) == 50_000
