"""A review world: a CSMS data dir with a real chain, one committed V2G settlement and people.

The settlement comes from a signing meter driven through charge-then-discharge, is settled by
the store's closing hook with the data dir's CSMS key, sealed into every validator store with
the ledger's own tools, and marked committed with the receipt the ledger builds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from chargepoint.meter import (
    public_key_pem,
)
from csms.identity import PseudonymKey
from csms.model import MeterSample, TokenRecord, TransactionEventRecord
from csms.operators import OperatorRegistry
from csms.settling import SettlementSetup, session_closer
from csms.store.sqlite import CsmsStore
from csms.tariffs import parse_tariff
from csms.timeutil import format_timestamp
from ledger.devchain import read_csms_key, seal_into_data_dir
from ledger.home import init_data_dir, load_home, validator_homes
from ledger.receipt import build_receipt, receipt_to_dict
from ledger.sqlite_store import SqliteBlockStore
from ledger.types import Tx
from tests.csms.signed_session import BOUNDARY, T0, TARIFF, SignedSession

STATION = "CS-REVIEW-1"
OTHER_STATION = "CS-REVIEW-2"
TOKEN = "04AABBCCDDEEFF"
PSEUDONYM = "v1:pseudo-alice-ev"
CHAIN_ID = "review-chain"
OPERATOR, OPERATOR_PW = "olivia", "operator-pass-1"
AUDITOR, AUDITOR_PW = "arthur", "auditor-pass-1"
# 16:30-17:00 import 4 kWh at 0.30; 17:00-17:45 import 0.5 kWh at 0.40, export 3 kWh at 0.50
EXPECTED_AMOUNT = (4_000 * 300_000 + 500 * 400_000 - 3_000 * 500_000) // 1000  # -100000


class MeteredSession(SignedSession):
    """A meter driven through charge-then-discharge, producing the events a station sends."""

    def __init__(self, station_id: str, transaction_id: str) -> None:
        super().__init__(station_id, transaction_id, TOKEN)

    def event(
        self, event_type: str, at: datetime, nature: str | None, soc: int, power_w: int
    ) -> TransactionEventRecord:
        signed = None if nature is None else self.signed(nature, at)
        power = "Power.Active.Import" if power_w >= 0 else "Power.Active.Export"
        samples = (
            *self.registers(at, signed),
            MeterSample(at, power, abs(power_w), "W"),
            MeterSample(at, "SoC", soc, "Percent"),
        )
        return self.record(event_type, at, samples)

    def events(self, start: datetime = T0) -> list[TransactionEventRecord]:
        events = [self.event("Started", start, "Begin", 40, 8_000)]
        self.flow(2_000, 0, start)
        events.append(self.event("Updated", start + timedelta(minutes=15), None, 45, 8_000))
        self.flow(2_000, 0, start)
        events.append(self.event("Updated", BOUNDARY, "Intermediate", 50, -4_000))
        self.flow(500, 1_500, BOUNDARY)
        events.append(self.event("Updated", BOUNDARY + timedelta(minutes=20), None, 46, -4_000))
        self.flow(0, 1_500, BOUNDARY)
        events.append(self.event("Ended", BOUNDARY + timedelta(minutes=45), "End", 42, 0))
        return events


@dataclass
class World:
    data_dir: Path
    store: CsmsStore
    setup: SettlementSetup
    settlement_id: str
    flagged_id: str

    @property
    def genesis_path(self) -> Path:
        return self.data_dir / "genesis.json"


async def commit_pending(world_dir: Path, store: CsmsStore) -> int:
    """Seal every pending settlement into one block and store each receipt: the outbox's job."""
    pending = [s for s in await store.list_settlements("pending") if s.tx is not None]
    height = await seal_into_data_dir(world_dir, [[Tx(s.tx) for s in pending if s.tx]])
    blocks = await SqliteBlockStore.open(load_home(validator_homes(world_dir)[0]).store_path)
    try:
        for index, record in enumerate(pending):
            receipt = await build_receipt(blocks, record.settlement_id)
            document = receipt_to_dict(receipt)
            await store.mark_committed(
                record.settlement_id,
                at=format_timestamp(T0 + timedelta(hours=1, seconds=3 + index)),
                block_height=height,
                block_hash=document["block_id"],
                tx_index=receipt.tx_index,
                receipt=json.dumps(document, sort_keys=True),
            )
    finally:
        await blocks.close()
    return height


def world_setup(data_dir: Path) -> SettlementSetup:
    return SettlementSetup(
        operator="OP-REVIEW",
        chain_id=CHAIN_ID,
        signer=read_csms_key(data_dir),
        tariff=parse_tariff(TARIFF, source="tariff.yaml"),
        pseudonym_key=PseudonymKey(1, b"k" * 32),
    )


async def open_world(data_dir: Path) -> World:
    """A world built before (and copied here): its store opened, its setup loaded."""
    store = await CsmsStore.open_data_dir(data_dir)
    setup = world_setup(data_dir)
    store.session_closer = session_closer(setup)
    settled = await store.settlement_for_session(STATION, "tx-good")
    flagged = await store.settlement_for_session(OTHER_STATION, "tx-bad")
    assert settled is not None and flagged is not None
    return World(data_dir, store, setup, settled.settlement_id, flagged.settlement_id)


async def build_world(data_dir: Path) -> World:
    init_data_dir(data_dir, validators=4, chain_id=CHAIN_ID, genesis_time=int(time.time() * 1000))
    for home in validator_homes(data_dir):
        blocks = await SqliteBlockStore.open(load_home(home).store_path)
        await blocks.close()
    store = await CsmsStore.open_data_dir(data_dir)
    setup = world_setup(data_dir)
    good = MeteredSession(STATION, "tx-good")
    await store.add_station(
        STATION, "scrypt$x", "2026-11-25T00:00:00Z", public_key_pem(good.key).decode()
    )
    bad = MeteredSession(OTHER_STATION, "tx-bad")
    # the other station's registered key is not its meter's: its evidence fails
    await store.add_station(
        OTHER_STATION, "scrypt$x", "2026-11-25T00:00:00Z", public_key_pem(good.key).decode()
    )
    await store.add_token(
        TokenRecord(TOKEN, "ISO14443", "Accepted", "invoice", None, "2026-01-01", PSEUDONYM)
    )
    store.session_closer = session_closer(setup)
    for event in good.events():
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    for event in bad.events(T0 + timedelta(minutes=1)):
        await store.record_transaction_event(event, format_timestamp(event.timestamp))
    settled = await store.settlement_for_session(STATION, "tx-good")
    flagged = await store.settlement_for_session(OTHER_STATION, "tx-bad")
    assert settled is not None and settled.status == "pending", settled
    assert flagged is not None and flagged.status == "flagged", flagged
    await commit_pending(data_dir, store)
    registry = OperatorRegistry(store)
    await registry.add(OPERATOR, OPERATOR_PW, "operator", "2026-11-25T00:00:00Z")
    await registry.add(AUDITOR, AUDITOR_PW, "auditor", "2026-11-25T00:00:00Z")
    return World(data_dir, store, setup, settled.settlement_id, flagged.settlement_id)
