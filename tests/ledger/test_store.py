from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger.chain import replay, verify_store
from ledger.codec import block_id
from ledger.commit import make_commit
from ledger.errors import StoreError
from ledger.keys import generate_key, public_bytes
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import BlockStore, MemoryBlockStore
from ledger.tx import validator_update_body
from ledger.types import Block
from tests.ledger.builders import CHAIN_ID, make_net, settlement_body


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlockStore]:
    s: BlockStore
    if request.param == "memory":
        s = MemoryBlockStore()
    else:
        s = await SqliteBlockStore.open(tmp_path / "blocks.sqlite")
    yield s
    await s.close()


async def test_append_get_and_find(store: BlockStore) -> None:
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1")), net.csms_tx(settlement_body("s-2"))])
    net.seal([net.csms_tx(settlement_body("s-3"))])
    assert await store.height() == 0
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)
    assert await store.height() == 2
    got = await store.get(1)
    assert got is not None
    assert got.block == net.chain[0].block
    assert got.commit == net.chain[0].commit
    assert await store.get(3) is None
    assert await store.find_settlement("s-2") == (1, 1)
    assert await store.find_settlement("s-3") == (2, 0)
    assert await store.find_settlement("nope") is None
    report = await verify_store(store, net.genesis)
    assert (report.height, report.tx_count) == (2, 3)
    assert (await replay(store, net.genesis)).settlements.keys() == {"s-1", "s-2", "s-3"}


async def test_append_refuses_gaps_and_repeats(store: BlockStore) -> None:
    net = make_net()
    net.seal([])
    net.seal([])
    with pytest.raises(StoreError, match="expected height 1"):
        await store.append(net.chain[1].block, net.chain[1].commit)
    await store.append(net.chain[0].block, net.chain[0].commit)
    with pytest.raises(StoreError, match="expected height 2"):
        await store.append(net.chain[0].block, net.chain[0].commit)
    assert await store.height() == 1


async def test_sqlite_persists_in_wal_mode_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "blocks.sqlite"
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1"))])
    store = await SqliteBlockStore.open(path)
    await store.append(net.chain[0].block, net.chain[0].commit)
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = await SqliteBlockStore.open(path, readonly=True)
    try:
        assert await reopened.height() == 1
        got = await reopened.get(1)
        assert got is not None and got.block == net.chain[0].block
    finally:
        await reopened.close()


async def test_failed_append_leaves_nothing_behind(tmp_path: Path) -> None:
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1"))])
    store = await SqliteBlockStore.open(tmp_path / "b.sqlite")
    try:
        block = net.chain[0].block
        wrong = Block(dataclasses.replace(block.header, height=5), block.txs)
        with pytest.raises(StoreError):
            await store.append(wrong, None)
        assert await store.height() == 0
        assert await store.find_settlement("s-1") is None
    finally:
        await store.close()


async def test_readonly_open_of_missing_or_bad_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such block store"):
        await SqliteBlockStore.open(tmp_path / "missing.sqlite", readonly=True)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"bad\.sqlite"):
        await SqliteBlockStore.open(bad, readonly=True)


async def test_replace_commit_of_the_top_block(store: BlockStore) -> None:
    net = make_net()
    net.seal([])
    first = net.chain[0]
    await store.append(first.block, first.commit)
    # another valid certificate of the same block, by a different quorum
    other = make_commit(
        chain_id=CHAIN_ID,
        height=1,
        block_id=block_id(first.block.header),
        keys=net.validator_keys[1:],
    )
    assert other != first.commit
    await store.replace_commit(1, other)
    got = await store.get(1)
    assert got is not None and got.commit == other
    with pytest.raises(StoreError, match="does not match"):
        await store.replace_commit(1, dataclasses.replace(other, block_id=bytes(32)))
    net.chain[0] = dataclasses.replace(first, commit=other)
    second = net.seal([])  # binds ``other`` in its last_commit_hash
    await store.append(second.block, second.commit)
    with pytest.raises(StoreError, match="not the top"):
        await store.replace_commit(1, first.commit)  # type: ignore[arg-type]
    assert (await verify_store(store, net.genesis)).height == 2


async def test_heights_containing_finds_the_blocks_with_a_marker(store: BlockStore) -> None:
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1"))])
    update = validator_update_body(update_id="u1", changes=[(public_bytes(generate_key()), 5)])
    net.seal([net.csms_tx(settlement_body("s-2")), net.aggregator_tx(update)])
    net.seal([net.csms_tx(settlement_body("s-3"))])
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)
    marker = b'"type":"validator_update"'
    assert await store.heights_containing(marker, 3) == [2]
    assert await store.heights_containing(marker, 1) == []
    assert await store.heights_containing(b'"settlement_id":"s-', 3) == [1, 2, 3]
    assert await store.heights_containing(b"nowhere", 3) == []


async def test_change_heights_are_kept_as_blocks_are_appended(store: BlockStore) -> None:
    """Receipts carry every validator change: the store keeps their heights, so building a
    receipt does not look through every stored transaction."""
    net = make_net()
    update = validator_update_body(update_id="u1", changes=[(public_bytes(generate_key()), 5)])
    net.seal([net.csms_tx(settlement_body("s-1"))])
    net.seal([net.csms_tx(settlement_body("s-2")), net.aggregator_tx(update)])
    net.seal([net.csms_tx(settlement_body("s-3"))])
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)

    async def no_scan(needle: bytes, up_to: int) -> list[int]:
        raise AssertionError("scanned the stored transactions")

    store.heights_containing = no_scan  # type: ignore[method-assign]
    assert await store.change_heights(3) == [2]
    assert await store.change_heights(1) == []


async def test_an_older_sqlite_store_gets_its_change_heights_once(tmp_path: Path) -> None:
    net = make_net()
    update = validator_update_body(update_id="u1", changes=[(public_bytes(generate_key()), 5)])
    net.seal([net.aggregator_tx(update)])
    net.seal([net.csms_tx(settlement_body("s-1"))])
    path = tmp_path / "blocks.sqlite"
    store = await SqliteBlockStore.open(path)
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)
    await store.close()
    with sqlite3.connect(path) as conn:  # as a version without the index left it
        conn.execute("DROP TABLE validator_changes")
        conn.execute("PRAGMA user_version = 0")
    readonly = await SqliteBlockStore.open(path, readonly=True)
    try:
        assert await readonly.change_heights(2) == [1]  # read-only: found by a scan
    finally:
        await readonly.close()
    store = await SqliteBlockStore.open(path)
    try:
        assert await store.change_heights(2) == [1]
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT height FROM validator_changes").fetchall() == [(1,)]
            assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    finally:
        await store.close()
