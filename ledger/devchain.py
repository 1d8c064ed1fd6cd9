"""A local development chain: demo settlements, sealed in one process into every store.

This is the genesis-local "single-process sealing" used by tests, benchmarks and demos
before (or instead of) running consensus: it reads the validator keys of a data dir,
certifies each block with all of them, and appends it to every validator's store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.amounts import PricedInterval, settlement_amount
from ledger.chain import verify_store
from ledger.errors import StoreError
from ledger.home import load_home, load_home_genesis, load_validator_key, validator_homes
from ledger.keys import SigningKey, read_key_file
from ledger.sealing import seal_block
from ledger.sqlite_store import SqliteBlockStore
from ledger.tx import sign_tx
from ledger.types import Tx


def demo_settlement_body(n: int, *, operator: str = "demo-operator") -> dict[str, Any]:
    """A valid settlement with varied energies and prices, deterministic in ``n``."""
    rows = [
        PricedInterval(2_000 + 37 * n % 9_000, 0, 250_000 + 1_000 * (n % 50), 90_000),
        PricedInterval(0, 1_000 + 53 * n % 4_000, 250_000, 380_000 + 500 * (n % 40)),
    ]
    fake = hashlib.sha256(f"demo-{n}".encode()).hexdigest()
    return {
        "type": "settlement",
        "schema": 1,
        "settlement_id": f"demo-{n}",
        "transaction_id": f"tx-{n}",
        "operator": operator,
        "evse_id": f"DE*V2G*E{n % 100}*1",
        "ev": f"ev1:{fake[:32]}",
        "start": "2026-01-01T10:00:00Z",
        "end": "2026-01-01T12:00:00Z",
        "energy": {
            "import_wh": sum(r.import_wh for r in rows),
            "export_wh": sum(r.export_wh for r in rows),
        },
        "tariff": {"id": "demo-tariff", "sha256": fake, "currency": "EUR"},
        "intervals": [
            {
                "start": f"2026-01-01T1{i}:00:00Z",
                "import_wh": r.import_wh,
                "export_wh": r.export_wh,
                "import_price": r.import_price,
                "export_price": r.export_price,
            }
            for i, r in enumerate(rows)
        ],
        "amount": settlement_amount(rows),
        "payment": "invoice",
        "evidence": {
            "meter_key_sha256": fake,
            "records": [{"nature": "Begin", "sha256": fake}, {"nature": "End", "sha256": fake}],
        },
    }


def demo_settlements(key: SigningKey, chain_id: str, first: int, count: int) -> list[Tx]:
    return [sign_tx(demo_settlement_body(n), key, chain_id) for n in range(first, first + count)]


async def seal_into_data_dir(
    data_dir: Path, batches: Sequence[Sequence[Tx]], *, block_ms: int = 1000
) -> int:
    """Seal one block per batch onto the chain of ``data_dir``; return the new height.

    The current state is rebuilt from v0's store (verifying it); every store must be at
    the same height.
    """
    homes = [load_home(h) for h in validator_homes(data_dir)]
    genesis = load_home_genesis(homes[0])
    keys = [load_validator_key(c) for c in homes]
    stores = [await SqliteBlockStore.open(c.store_path) for c in homes]
    try:
        heights = {await s.height() for s in stores}
        if len(heights) != 1:
            raise StoreError(f"{data_dir}: validator stores are at different heights {heights}")
        report = await verify_store(stores[0], genesis)
        state = report.state
        top = await stores[0].get(state.height) if state.height else None
        last_commit = top.commit if top else None
        for batch in batches:
            sealed = seal_block(
                state, batch, keys, time=state.time + block_ms, last_commit=last_commit
            )
            for store in stores:
                await store.append(sealed.block, sealed.commit)
            state, last_commit = sealed.state, sealed.commit
        return state.height
    finally:
        for store in stores:
            await store.close()


def read_csms_key(data_dir: Path) -> SigningKey:
    return read_key_file(data_dir / "keys" / "csms.key")
