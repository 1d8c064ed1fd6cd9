"""The aiosqlite block store: WAL, one writer connection, one transaction per block.

Headers, transactions and certificates are stored as their canonical bytes, so the file
holds exactly what was hashed and signed; reading checks the bytes are still canonical.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from ledger.canonical import decode
from ledger.codec import commit_bytes, commit_from_dict, header_bytes, header_from_dict
from ledger.errors import BlockError, EncodingError, StoreError
from ledger.store import (
    VALIDATOR_UPDATE_MARKER,
    BlockStore,
    StoredBlock,
    changes_validators,
    check_commit_for,
    settlement_ids,
)
from ledger.types import Block, Commit, Tx

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    header BLOB NOT NULL,
    commit_cert BLOB
);
CREATE TABLE IF NOT EXISTS txs (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (height, idx)
);
CREATE TABLE IF NOT EXISTS settlements (
    settlement_id TEXT PRIMARY KEY,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL
);
"""

ROWS_PER_INSERT = 500

# Version 1 adds the heights of the blocks that change the validator set, found once in the
# stored transactions of an older store.
INDEX_VERSION = 1


class SqliteBlockStore(BlockStore):
    """Blocks in one SQLite file. Open with ``await SqliteBlockStore.open(path)``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path, *, indexed: bool = True) -> None:
        self._conn = conn
        self._path = path
        self._indexed = indexed  # holds ``validator_changes`` (an older store read-only: not)

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False) -> SqliteBlockStore:
        """Open (creating unless ``readonly``) the store at ``path``."""
        if readonly and not path.is_file():
            raise StoreError(f"{path}: no such block store")
        try:
            if readonly:
                conn = await aiosqlite.connect(
                    f"file:{path}?mode=ro", uri=True, isolation_level=None
                )
            else:
                conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open: {exc}") from exc
        try:
            if not readonly:
                await conn.execute("PRAGMA journal_mode=WAL")
                await conn.execute("PRAGMA synchronous=FULL")
                await conn.executescript(SCHEMA)
                await _upgrade(conn)
            await conn.execute("SELECT count(*) FROM blocks")
            indexed = await _index_version(conn) >= INDEX_VERSION
        except sqlite3.Error as exc:
            await conn.close()  # the connection's thread would otherwise keep the process alive
            raise StoreError(f"{path}: not a usable block store: {exc}") from exc
        return cls(conn, path, indexed=indexed)

    async def close(self) -> None:
        await self._conn.close()

    async def height(self) -> int:
        try:
            async with self._conn.execute("SELECT max(height) FROM blocks") as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: {exc}") from exc
        return int(row[0]) if row and row[0] is not None else 0

    async def append(
        self,
        block: Block,
        commit: Commit | None,
        *,
        last_commit: Commit | None = None,
        settlements: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        h = block.header.height
        if settlements is None:
            settlements = settlement_ids(block)
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                # one trip to the connection's thread each (a cursor read costs three)
                rows = list(await self._conn.execute_fetchall("SELECT max(height) FROM blocks"))
                top = int(rows[0][0]) if rows and rows[0][0] is not None else 0
                if h != top + 1:
                    raise StoreError(f"{self._path}: append: expected height {top + 1}, got {h}")
                if last_commit is not None and top > 0:
                    await self._bind_last_commit(top, last_commit)
                cert = None if commit is None else commit_bytes(commit)
                await self._conn.execute(
                    "INSERT INTO blocks (height, header, commit_cert) VALUES (?, ?, ?)",
                    (h, header_bytes(block.header), cert),
                )
                await self._insert_rows(
                    "INSERT INTO txs (height, idx, data) VALUES ",
                    [(h, i, tx.data) for i, tx in enumerate(block.txs)],
                )
                await self._insert_rows(
                    "INSERT OR IGNORE INTO settlements (settlement_id, height, idx) VALUES ",
                    [(sid, h, i) for sid, i in settlements],
                )
                if changes_validators(block):
                    await self._conn.execute(
                        "INSERT INTO validator_changes (height) VALUES (?)", (h,)
                    )
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: append height {h}: {exc}") from exc

    async def _insert_rows(self, insert: str, rows: list[tuple[object, object, object]]) -> None:
        """Rows of three values inserted ``ROWS_PER_INSERT`` to a statement: one step of
        SQLite each, where ``executemany`` took one per row, each handing the GIL back and
        forth with an event loop busy checking signatures (a 1,000-transaction block took
        100-300 ms to store under load)."""
        for at in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[at : at + ROWS_PER_INSERT]
            values = ",".join(["(?, ?, ?)"] * len(chunk))
            await self._conn.execute(insert + values, [v for row in chunk for v in row])

    async def _bind_last_commit(self, top: int, commit: Commit) -> None:
        """Inside ``append``'s transaction: the block below gets the certificate its successor
        binds (unless it holds that one already)."""
        cert = commit_bytes(commit)
        rows = list(
            await self._conn.execute_fetchall(
                "SELECT header, commit_cert FROM blocks WHERE height = ?", (top,)
            )
        )
        assert rows
        row = rows[0]
        if row[1] is not None and bytes(row[1]) == cert:
            return
        header = header_from_dict(decode(bytes(row[0])))
        check_commit_for(Block(header, ()), commit)
        await self._conn.execute("UPDATE blocks SET commit_cert = ? WHERE height = ?", (cert, top))

    async def replace_commit(self, height: int, commit: Commit) -> None:
        top = await self.height()
        if height != top or top == 0:
            raise StoreError(f"{self._path}: replace_commit: height {height} is not the top {top}")
        stored = await self.get(height)
        assert stored is not None
        check_commit_for(stored.block, commit)
        try:
            await self._conn.execute("BEGIN IMMEDIATE")
            await self._conn.execute(
                "UPDATE blocks SET commit_cert = ? WHERE height = ?", (commit_bytes(commit), height)
            )
            await self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: replace_commit {height}: {exc}") from exc

    async def change_heights(self, up_to: int) -> list[int]:
        if not self._indexed:
            return await super().change_heights(up_to)
        try:
            async with self._conn.execute(
                "SELECT height FROM validator_changes WHERE height <= ? ORDER BY height", (up_to,)
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: {exc}") from exc
        return [int(row[0]) for row in rows]

    async def heights_containing(self, needle: bytes, up_to: int) -> list[int]:
        try:
            async with self._conn.execute(
                "SELECT DISTINCT height FROM txs WHERE height <= ? AND instr(data, ?) > 0 "
                "ORDER BY height",
                (up_to, needle),
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: {exc}") from exc
        return [int(row[0]) for row in rows]

    async def get(self, height: int) -> StoredBlock | None:
        try:
            async with self._conn.execute(
                "SELECT header, commit_cert FROM blocks WHERE height = ?", (height,)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            async with self._conn.execute(
                "SELECT idx, data FROM txs WHERE height = ? ORDER BY idx", (height,)
            ) as cur:
                tx_rows = list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: read height {height}: {exc}") from exc
        if [r[0] for r in tx_rows] != list(range(len(tx_rows))):
            raise BlockError(height, "stored transactions have gaps in their indexes")
        try:
            header = header_from_dict(decode(bytes(row[0])))
        except EncodingError as exc:
            raise BlockError(height, f"stored header unreadable: {exc}") from exc
        try:
            commit = None if row[1] is None else commit_from_dict(decode(bytes(row[1])))
        except EncodingError as exc:
            raise BlockError(height, f"stored commit certificate unreadable: {exc}") from exc
        if header.height != height:
            raise BlockError(height, f"stored header says height {header.height}")
        txs = tuple(Tx(bytes(r[1])) for r in tx_rows)
        return StoredBlock(Block(header, txs), commit)

    async def find_settlement(self, settlement_id: str) -> tuple[int, int] | None:
        try:
            async with self._conn.execute(
                "SELECT height, idx FROM settlements WHERE settlement_id = ?", (settlement_id,)
            ) as cur:
                row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: {exc}") from exc
        return None if row is None else (int(row[0]), int(row[1]))


async def _upgrade(conn: aiosqlite.Connection) -> None:
    """Bring an older store's indexes up to ``INDEX_VERSION`` (in one transaction)."""
    if await _index_version(conn) >= INDEX_VERSION:
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS validator_changes (height INTEGER PRIMARY KEY)"
        )
        await conn.execute(
            "INSERT OR IGNORE INTO validator_changes (height) "
            "SELECT DISTINCT height FROM txs WHERE instr(data, ?) > 0",
            (VALIDATOR_UPDATE_MARKER,),
        )
        await conn.execute(f"PRAGMA user_version = {INDEX_VERSION}")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def _index_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])
