"""Any single flipped byte inside a stored record makes verification fail at its height."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.chain import verify_store
from ledger.errors import BlockError
from ledger.genesis import Genesis
from ledger.sqlite_store import ROWS_PER_INSERT, SqliteBlockStore
from tests.ledger.builders import make_net, settlement_body


async def _write(path: Path) -> Genesis:
    net = make_net()
    for b in range(3):
        net.seal([net.csms_tx(settlement_body(f"s-{b}-{i}")) for i in range(2)])
    store = await SqliteBlockStore.open(path)
    for sealed in net.chain:
        await store.append(sealed.block, sealed.commit)
    await store.close()
    return net.genesis


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Genesis, dict[str, list[bytes]]]:
    path = tmp_path_factory.mktemp("flip") / "blocks.sqlite"
    genesis = asyncio.run(_write(path))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        records = {
            "header": [
                bytes(r[0]) for r in conn.execute("SELECT header FROM blocks ORDER BY height")
            ],
            "certificate": [
                bytes(r[0]) for r in conn.execute("SELECT commit_cert FROM blocks ORDER BY height")
            ],
            "transaction": [
                bytes(r[0])
                for r in conn.execute("SELECT data FROM txs WHERE idx = 0 ORDER BY height")
            ],
        }
    return path, genesis, records


async def _verify(path: Path, genesis: Genesis) -> None:
    store = await SqliteBlockStore.open(path, readonly=True)
    try:
        await verify_store(store, genesis)
    finally:
        await store.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["header", "certificate", "transaction"]),
    height=st.integers(1, 3),
    position=st.floats(0, 1, exclude_max=True),
    mask=st.integers(1, 255),
)
def test_any_flip_fails_at_its_height(
    pristine: tuple[Path, Genesis, dict[str, list[bytes]]],
    tmp_path: Path,
    kind: str,
    height: int,
    position: float,
    mask: int,
) -> None:
    path, genesis, records = pristine
    asyncio.run(_verify(path, genesis))  # the pristine file verifies
    needle = records[kind][height - 1]
    raw = bytearray(path.read_bytes())
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) == -1
    raw[at + int(position * len(needle))] ^= mask
    copy = tmp_path / f"flipped-{kind}-{height}.sqlite"
    shutil.copyfile(path, copy)
    copy.write_bytes(bytes(raw))
    with pytest.raises(BlockError) as info:
        asyncio.run(_verify(copy, genesis))
    assert info.value.height == height


async def test_a_block_of_more_rows_than_one_insert_takes_is_stored_whole(tmp_path: Path) -> None:
    """Transactions and settlement ids go in several rows to a statement: a block larger
    than one statement's share reads back whole and in order, every settlement found."""
    net = make_net()
    count = 2 * ROWS_PER_INSERT + 3
    sealed = net.seal([net.csms_tx(settlement_body(f"s-{i}")) for i in range(count)])
    store = await SqliteBlockStore.open(tmp_path / "blocks.sqlite")
    try:
        await store.append(sealed.block, sealed.commit)
        stored = await store.get(1)
        assert stored is not None and stored.block == sealed.block
        for i in (0, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, count - 1):
            assert await store.find_settlement(f"s-{i}") == (1, i)
        await verify_store(store, net.genesis)
    finally:
        await store.close()
