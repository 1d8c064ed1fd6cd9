"""The ledger as the review shows it: height, validators with their last vote seen, verify status.

The default source reads a ledger laid out by ``v2g ledger init`` (``genesis.json`` and
``validators/v*/``) in the data dir itself or in its ``ledger/`` subdirectory (where the
CSMS keeps its embedded validators): v0's block store, opened read-only. The last vote seen
of a validator is the newest height whose commit certificate carries its precommit (looked
for in the last ``lookback`` blocks). Verification is incremental: the blocks verified
before are not checked again unless a full verification is asked for (``full=True``); a
failure stays reported until then. One request verifies at a time (a lock): concurrent
requests share the one verifier. The top block's certificate may be replaced by the canonical
one once the next block is stored; the verifier takes either (``ChainVerifier.rebind``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ledger.chain import ChainVerifier
from ledger.codec import block_id
from ledger.errors import LedgerError
from ledger.genesis import Genesis, load_genesis
from ledger.home import load_home, validator_homes
from ledger.sqlite_store import SqliteBlockStore


@dataclass(frozen=True, slots=True)
class ValidatorStatus:
    address: str
    power: int
    last_vote_height: int | None


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """``available`` False means no ledger was found; ``verified`` None means not checked."""

    available: bool
    chain_id: str | None = None
    height: int = 0
    top_hash: str | None = None
    top_time_ms: int | None = None  # the top block header's time (Unix ms)
    validators: tuple[ValidatorStatus, ...] = ()
    verified: bool | None = None
    verify_error: str | None = None
    source: str = ""


def ledger_root(data_dir: Path) -> Path | None:
    """Where a data dir keeps its ledger (genesis and validator homes), if anywhere."""
    for root in (data_dir, data_dir / "ledger"):
        if (root / "genesis.json").is_file() and (root / "validators").is_dir():
            return root
    return None


@dataclass(slots=True)
class DataDirLedger:
    """Reads the chain of a data dir; verification is cached per height."""

    data_dir: Path
    lookback: int = 200
    _verifier: ChainVerifier | None = field(default=None)
    _failure: str | None = field(default=None)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _verify(self, store: SqliteBlockStore, genesis: Genesis, height: int) -> None:
        if self._failure is not None:
            return
        if self._verifier is None:
            self._verifier = ChainVerifier.from_genesis(genesis)
        try:
            done = self._verifier.state.height
            if done:
                below = await store.get(done)
                if below is None:
                    raise LedgerError(f"height {done}: block missing from the store")
                self._verifier.rebind(below.commit)
            for h in range(done + 1, height + 1):
                stored = await store.get(h)
                if stored is None:
                    raise LedgerError(f"height {h}: block missing from the store")
                self._verifier.feed(stored)
        except LedgerError as exc:
            self._failure = str(exc)

    async def status(self, *, verify: bool = True, full: bool = False) -> ChainStatus:
        """The chain now; ``verify`` False skips verification (metrics), ``full`` redoes it."""
        async with self._lock:
            return await self._status(verify=verify, full=full)

    async def _status(self, *, verify: bool, full: bool) -> ChainStatus:
        if full:
            self._verifier, self._failure = None, None
        root = ledger_root(self.data_dir)
        if root is None:
            return ChainStatus(
                False, verify_error="no ledger in this data dir", source=str(self.data_dir)
            )
        genesis_path = root / "genesis.json"
        try:
            homes = validator_homes(root)
            if not homes:
                return ChainStatus(False, source=str(root))
            genesis = load_genesis(genesis_path)
            home = load_home(homes[0])
        except LedgerError as exc:
            return ChainStatus(False, verify_error=str(exc), source=str(self.data_dir))
        if not home.store_path.is_file():
            return ChainStatus(False, chain_id=genesis.chain_id, source=str(home.store_path))
        store = await SqliteBlockStore.open(home.store_path, readonly=True)
        try:
            height = await store.height()
            last_vote: dict[str, int] = {}
            members = {v.address: v.power for v in genesis.validators.validators}
            top_hash: str | None = None
            top_time: int | None = None
            for h in range(height, max(0, height - self.lookback), -1):
                stored = await store.get(h)
                if stored is None:
                    break
                if top_hash is None:
                    top_hash = block_id(stored.block.header).hex()
                    top_time = stored.block.header.time
                for sig in stored.commit.signatures if stored.commit else ():
                    last_vote.setdefault(sig.validator, h)
                    members.setdefault(sig.validator, 0)
                if len(last_vote) >= len(members):
                    break
            ok: bool | None = None
            if verify:
                await self._verify(store, genesis, height)
                ok = self._failure is None
        finally:
            await store.close()
        return ChainStatus(
            available=True,
            chain_id=genesis.chain_id,
            height=height,
            top_hash=top_hash,
            top_time_ms=top_time,
            validators=tuple(
                ValidatorStatus(address, power, last_vote.get(address))
                for address, power in sorted(members.items())
            ),
            verified=ok,
            verify_error=self._failure if verify else None,
            source=str(home.store_path),
        )
