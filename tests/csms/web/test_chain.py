"""The chain status read from a data dir: height, last votes, verification and tampering."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from csms.web.chain import DataDirLedger, ledger_root
from ledger.codec import block_id
from ledger.commit import make_commit
from ledger.devchain import demo_settlements, read_csms_key, seal_into_data_dir
from ledger.home import init_data_dir, load_home, load_validator_key, validator_homes
from ledger.sqlite_store import SqliteBlockStore


async def make_ledger(root: Path, blocks: int) -> None:
    init_data_dir(root, validators=4, chain_id="c", genesis_time=int(time.time() * 1000))
    for home in validator_homes(root):
        store = await SqliteBlockStore.open(load_home(home).store_path)
        await store.close()
    key = read_csms_key(root)
    batches = [demo_settlements(key, "c", 2 * i, 2) for i in range(blocks)]
    await seal_into_data_dir(root, batches)


async def test_no_ledger_is_reported_not_raised(tmp_path: Path) -> None:
    status = await DataDirLedger(tmp_path).status()
    assert not status.available and status.height == 0
    assert ledger_root(tmp_path) is None


async def test_a_ledger_in_the_ledger_subdirectory_verifies(tmp_path: Path) -> None:
    await make_ledger(tmp_path / "ledger", blocks=3)
    assert ledger_root(tmp_path) == tmp_path / "ledger"
    status = await DataDirLedger(tmp_path).status()
    assert status.available and status.height == 3 and status.verified is True
    assert len(status.validators) == 4
    assert {v.last_vote_height for v in status.validators} == {3}
    assert status.top_hash is not None and len(status.top_hash) == 64


async def test_a_tampered_block_fails_verification(tmp_path: Path) -> None:
    await make_ledger(tmp_path, blocks=2)
    path = load_home(validator_homes(tmp_path)[0]).store_path
    with sqlite3.connect(path) as db:
        (data,) = db.execute("SELECT data FROM txs WHERE height = 1 AND idx = 0").fetchone()
        flipped = data.replace(b'"amount":', b'"amount": ', 1)
        db.execute("UPDATE txs SET data = ? WHERE height = 1 AND idx = 0", (flipped,))
    status = await DataDirLedger(tmp_path).status()
    assert status.available and status.verified is False and status.verify_error


async def test_verification_is_incremental_and_a_full_pass_rechecks_old_blocks(
    tmp_path: Path,
) -> None:
    await make_ledger(tmp_path, blocks=2)
    ledger = DataDirLedger(tmp_path)
    assert (await ledger.status()).verified is True
    key = read_csms_key(tmp_path)
    await seal_into_data_dir(tmp_path, [demo_settlements(key, "c", 10, 1)])
    grown = await ledger.status()
    assert grown.height == 3 and grown.verified is True
    path = load_home(validator_homes(tmp_path)[0]).store_path
    with sqlite3.connect(path) as db:
        (data,) = db.execute("SELECT data FROM txs WHERE height = 1 AND idx = 0").fetchone()
        db.execute(
            "UPDATE txs SET data = ? WHERE height = 1 AND idx = 0",
            (data.replace(b'"amount":', b'"amount": ', 1),),
        )
    assert (await ledger.status()).verified is True  # block 1 was verified before
    assert (await ledger.status(verify=False)).verified is None
    full = await ledger.status(full=True)
    assert full.verified is False and full.verify_error
    assert (await ledger.status()).verified is False  # stays reported


async def test_concurrent_full_verifications_all_pass_on_a_good_chain(tmp_path: Path) -> None:
    await make_ledger(tmp_path, blocks=4)
    ledger = DataDirLedger(tmp_path)
    results = await asyncio.gather(*(ledger.status(full=True) for _ in range(3)))
    assert [r.verified for r in results] == [True, True, True], [r.verify_error for r in results]


async def replace_top_commit(root: Path, signers: int) -> None:
    """Replace the top block's certificate in v0's store by one ``signers`` validators sign,
    as a validator does when the next block binds another quorum than the one it decided on."""
    homes = [load_home(h) for h in validator_homes(root)]
    keys = [load_validator_key(h) for h in homes]
    store = await SqliteBlockStore.open(homes[0].store_path)
    try:
        top = await store.height()
        stored = await store.get(top)
        assert stored is not None
        commit = make_commit(
            chain_id="c", height=top, block_id=block_id(stored.block.header), keys=keys[:signers]
        )
        await store.replace_commit(top, commit)
    finally:
        await store.close()


async def test_incremental_verification_takes_either_certificate_of_the_top_block(
    tmp_path: Path,
) -> None:
    await make_ledger(tmp_path, blocks=2)
    ledger = DataDirLedger(tmp_path)
    assert (await ledger.status()).verified is True
    await replace_top_commit(tmp_path, signers=3)  # another quorum: as good
    assert (await ledger.status()).verified is True
    await replace_top_commit(tmp_path, signers=2)  # not a quorum
    status = await ledger.status()
    assert status.verified is False and "expected more than two thirds" in str(status.verify_error)
