"""Submitting transactions to running validators and fetching their receipts.

The CSMS outbox's narrow port to the ledger:

- ``await submit_tx(urls, tx)`` tries the validators in turn until one accepts the
  transaction and answers once a block commits it (a ``wire.Receipt``: height, index, block).
  Submitting a transaction again after it committed (a retry after a crash) answers with the
  same receipt; a different transaction reusing a settled id is rejected.
- ``await fetch_receipt(urls, settlement_id)`` returns the self-contained receipt document
  (``ledger.receipt.receipt_to_dict``) that ``v2g ledger verify-receipt`` checks offline, once
  a validator's store holds the block; ``submit_and_fetch`` does both.
- ``ValidatorSession`` keeps one connection with many submissions in flight (load drivers).

Every connection opens with the handshake of ``handshake.py``. Given a ``key`` (the CSMS's
settlement key, or the aggregator's), the session takes the ``submitter`` role and proves the
key once; the validator then takes the transactions signed by that key on the connection,
and refuses others. Without a key it takes the ``client`` role, which may only read
(receipts, blocks, status). Neither may send consensus messages. Given the genesis, the
session also checks that the other end proves a validator key of that chain. Each session
counts its traffic in a ``LinkStats`` (``ValidatorClient.links``, by validator URL: up,
connects, refused handshakes, frames in and out, busy answers) for monitoring.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from ledger.codec import tx_hash, tx_record
from ledger.consensus.errors import ConsensusError, HandshakeFailed, SubmitBusy, SubmitRejected
from ledger.consensus.handshake import FEATURES, Role, ValidatorKeys
from ledger.consensus.linkstats import LinkStats
from ledger.consensus.peers import POLICY_VIOLATION, greet
from ledger.consensus.wire import (
    Busy,
    GetReceipt,
    Receipt,
    ReceiptDoc,
    Receipts,
    Rejected,
    SubmitBatch,
    TxMsg,
    dump,
    load,
)
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.receipt import receipt_from_dict, verify_receipt
from ledger.types import Tx

MAX_FRAME = 16 * 1024 * 1024
MAX_SUBMIT_BATCH = 500  # submissions in one frame, at most
UNREACHABLE = (TimeoutError, OSError, WebSocketException, HandshakeFailed, SubmitBusy)


class SubmitFailed(ConsensusError):
    """No validator could be reached or none answered before the deadline."""


async def submit_tx(
    urls: Sequence[str],
    tx: Tx,
    *,
    key: SigningKey,
    timeout_s: float = 30.0,
    genesis: Genesis | None = None,
) -> Receipt:
    """Send ``tx`` (signed by ``key``, which the connections prove) to the first validator
    that takes it; return its commit receipt.

    Raises ``SubmitRejected`` when a validator refuses it (invalid: trying others would not
    help) and ``SubmitFailed`` when no validator answered in ``timeout_s`` seconds each.
    """
    async with ValidatorClient(urls, genesis=genesis, key=key) as client:
        return await client.submit(tx, timeout_s=timeout_s)


async def fetch_receipt(
    urls: Sequence[str],
    settlement_id: str,
    *,
    wait_s: float = 10.0,
    genesis: Genesis | None = None,
) -> dict[str, Any] | None:
    """The receipt document of a committed settlement, or None if no validator holds it.

    Each validator is given up to ``wait_s`` seconds for the block to reach its store. With
    ``genesis``, a document that does not verify against it is skipped (a faulty validator
    cannot hand out a bad receipt).
    """
    async with ValidatorClient(urls, genesis=genesis) as client:
        return await client.fetch_receipt(settlement_id, wait_s=wait_s)


async def submit_with_receipt(
    urls: Sequence[str],
    tx: Tx,
    *,
    key: SigningKey,
    timeout_s: float = 30.0,
    wait_s: float = 2.0,
    genesis: Genesis | None = None,
) -> tuple[Receipt, dict[str, Any] | None]:
    """``submit_tx``, then the receipt document asked for on the same connection (see
    ``ValidatorClient.submit_with_receipt``)."""
    async with ValidatorClient(urls, genesis=genesis, key=key) as client:
        return await client.submit_with_receipt(tx, timeout_s=timeout_s, wait_s=wait_s)


class ValidatorClient:
    """Validators a client keeps talking to: one connection to each, opened when first
    needed and again after it drops, carrying any number of requests at once (so a CSMS
    pays one handshake per validator, not one per settlement).

    Each call tries the validators in turn. With ``key``, the connections may submit the
    transactions that key signs; without, they may only read. With ``genesis``, every
    connection checks that it reached a validator of that chain, and receipt documents that
    do not verify against it are not taken.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        genesis: Genesis | None = None,
        key: SigningKey | None = None,
    ) -> None:
        self.urls = list(urls)
        self.genesis = genesis
        self.key = key
        self.links = {url: LinkStats() for url in self.urls}  # counters by validator URL
        self._sessions: dict[str, ValidatorSession] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> ValidatorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def submit(self, tx: Tx, *, timeout_s: float = 30.0) -> Receipt:
        """``submit_tx`` on the kept connections."""
        receipt, _ = await self._submit(tx, timeout_s=timeout_s, wait_s=None)
        return receipt

    async def submit_with_receipt(
        self, tx: Tx, *, timeout_s: float = 30.0, wait_s: float = 2.0
    ) -> tuple[Receipt, dict[str, Any] | None]:
        """Submit ``tx``, then ask the validator that answered (it has stored the block)
        for the receipt document on the same connection: no wait for another validator.

        The document is None when the transaction has no settlement id, the validator did
        not give it within ``wait_s``, or it does not verify against the genesis.
        """
        return await self._submit(tx, timeout_s=timeout_s, wait_s=wait_s)

    async def fetch_receipt(
        self, settlement_id: str, *, wait_s: float = 10.0
    ) -> dict[str, Any] | None:
        """``fetch_receipt`` on the kept connections."""
        for url in self.urls:
            try:
                async with asyncio.timeout(wait_s + 5):
                    session = await self._session(url)
                    doc = await session.get_receipt(settlement_id, wait_s=wait_s)
            except UNREACHABLE as exc:
                await self._forget(url, exc)
                continue
            doc = self._checked(doc)
            if doc is not None:
                return doc
        return None

    async def _submit(
        self, tx: Tx, *, timeout_s: float, wait_s: float | None
    ) -> tuple[Receipt, dict[str, Any] | None]:
        settlement_id = tx_record(tx).get("settlement_id") if wait_s is not None else None
        errors: list[str] = []
        for url in self.urls:
            try:
                async with asyncio.timeout(timeout_s):
                    session = await self._session(url)
                    receipt = await session.submit(tx)
                    doc = None
                    if isinstance(settlement_id, str) and wait_s is not None:
                        doc = await _receipt_on(session, settlement_id, wait_s)
            except UNREACHABLE as exc:
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
                await self._forget(url, exc)
                continue
            return receipt, self._checked(doc)
        raise SubmitFailed("no validator committed the transaction: " + "; ".join(errors))

    def _checked(self, doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None or self.genesis is None:
            return doc
        try:
            verify_receipt(receipt_from_dict(doc), self.genesis)
        except LedgerError:
            return None
        return doc

    async def _session(self, url: str) -> ValidatorSession:
        """The open connection to ``url``, opened (with its handshake) if there is none."""
        async with self._opening.setdefault(url, asyncio.Lock()):
            session = self._sessions.get(url)
            if session is not None and not session.closed:
                return session
            stats = self.links.setdefault(url, LinkStats())
            session = ValidatorSession(url, genesis=self.genesis, key=self.key, stats=stats)
            await session.__aenter__()
            self._sessions[url] = session
            return session

    async def _forget(self, url: str, exc: BaseException) -> None:
        """Drop a connection that failed (not one that is only slow or busy)."""
        if isinstance(exc, TimeoutError | SubmitBusy):
            return
        session = self._sessions.pop(url, None)
        if session is not None:
            await session.close()


async def _receipt_on(
    session: ValidatorSession, settlement_id: str, wait_s: float
) -> dict[str, Any] | None:
    try:
        async with asyncio.timeout(wait_s + 1):
            return await session.get_receipt(settlement_id, wait_s=wait_s)
    except TimeoutError:
        return None


async def submit_and_fetch(
    urls: Sequence[str],
    tx: Tx,
    *,
    key: SigningKey,
    timeout_s: float = 30.0,
    genesis: Genesis | None = None,
) -> tuple[Receipt, dict[str, Any]]:
    """Submit a settlement (or credit) and return its commit receipt and receipt document."""
    receipt = await submit_tx(urls, tx, key=key, timeout_s=timeout_s)
    settlement_id = tx_record(tx)["settlement_id"]
    doc = await fetch_receipt(urls, settlement_id, wait_s=timeout_s, genesis=genesis)
    if doc is None:
        raise SubmitFailed(f"settlement {settlement_id} committed but no validator stored it")
    return receipt, doc


def genesis_validator_keys(genesis: Genesis) -> ValidatorKeys:
    """The validator lookup a client checks a listener's proof with."""

    def lookup(address: str) -> bytes | None:
        member = genesis.validators.get(address)
        return None if member is None else member.public_key

    return lookup


class ValidatorSession:
    """One websocket to a validator with any number of submissions and queries in flight.

    Replies are matched by transaction hash (submissions) or settlement id (receipts). A
    dropped connection fails every call in flight with the ``WebSocketException``. With
    ``key`` the connection proves it (the submitter role) and may submit what it signs;
    without, it may only read.

    To a validator that declares ``batches`` in its hello, the submissions made in one turn
    of the event loop leave in one frame (``SubmitBatch``, at most ``MAX_SUBMIT_BATCH``),
    and their receipts come back together (``Receipts``); to an older validator, one frame
    each way per submission. ``batches=False`` declares nothing (as an older client).
    """

    def __init__(
        self,
        url: str,
        *,
        genesis: Genesis | None = None,
        key: SigningKey | None = None,
        open_timeout_s: float = 5.0,
        stats: LinkStats | None = None,
        batches: bool = True,
    ) -> None:
        self.url = url
        self.genesis = genesis
        self.key = key
        self.stats = stats if stats is not None else LinkStats()
        self.validator: str | None = None  # the address the other end proved (with genesis)
        self._open_timeout = open_timeout_s
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._features = FEATURES if batches else ()
        self.batching = False  # submissions go in batches (the validator takes them)
        self._outgoing: list[tuple[bytes, Tx]] = []  # submissions for the next batch
        self._sending: set[asyncio.Task[None]] = set()
        self._submits: dict[bytes, list[asyncio.Future[Receipt]]] = {}
        self._queries: dict[str, list[asyncio.Future[dict[str, Any] | None]]] = {}

    async def __aenter__(self) -> ValidatorSession:
        ws = await connect(
            self.url, open_timeout=self._open_timeout, max_size=MAX_FRAME, compression=None
        )
        genesis = self.genesis
        try:
            async with asyncio.timeout(self._open_timeout):
                greeted = await greet(
                    ws,
                    role=Role.CLIENT if self.key is None else Role.SUBMITTER,
                    chain_id=None if genesis is None else genesis.chain_id,
                    key=self.key,
                    validators=None if genesis is None else genesis_validator_keys(genesis),
                    features=self._features,
                )
        except BaseException as exc:
            if isinstance(exc, HandshakeFailed):
                self.stats.handshake_refused += 1
            await ws.close()
            raise
        self.validator = greeted.address
        self.batching = greeted.batches and bool(self._features)
        self.stats.up = True
        self.stats.connects += 1
        self._ws = ws
        self._reader = asyncio.create_task(self._read(self._ws))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        self.stats.up = False
        self._fail_all(ConnectionError(f"{self.url}: session closed"))

    @property
    def closed(self) -> bool:
        """The connection is gone (or never opened): open a new session."""
        return self._reader is None or self._reader.done()

    async def submit(self, tx: Tx) -> Receipt:
        """Send ``tx``; return its receipt once committed (``SubmitRejected`` if invalid)."""
        assert self._ws is not None, "use `async with ValidatorSession(url)`"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Receipt] = loop.create_future()
        key = tx_hash(tx)
        self._submits.setdefault(key, []).append(fut)
        try:
            if self.batching:
                self._outgoing.append((key, tx))
                if len(self._outgoing) >= MAX_SUBMIT_BATCH:
                    self._flush_submits()
                elif len(self._outgoing) == 1:
                    loop.call_soon(self._flush_submits)
            else:
                await self._ws.send(dump(TxMsg(tx, submit=True)))
                self.stats.messages_out += 1
            return await fut
        finally:
            _forget_future(self._submits, key, fut)
            del fut  # a rejection's traceback holds this frame: no cycle through the future

    def _flush_submits(self) -> None:
        """Send the submissions gathered since the last flush in one frame."""
        batch, self._outgoing = self._outgoing, []
        if batch:
            task = asyncio.ensure_future(self._send_batch(batch))
            self._sending.add(task)  # kept until sent (the loop holds tasks weakly)
            task.add_done_callback(self._sending.discard)

    async def _send_batch(self, batch: list[tuple[bytes, Tx]]) -> None:
        assert self._ws is not None
        try:
            await self._ws.send(dump(SubmitBatch(tuple(tx for _, tx in batch))))
        except WebSocketException as exc:  # each submitter hears it, as from a lone send
            for key, _ in batch:
                self._resolve_submit(key, exc)
            return
        self.stats.messages_out += 1

    async def get_receipt(
        self, settlement_id: str, *, wait_s: float = 0.0
    ) -> dict[str, Any] | None:
        """The receipt document of ``settlement_id`` once stored (None after ``wait_s``)."""
        assert self._ws is not None, "use `async with ValidatorSession(url)`"
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._queries.setdefault(settlement_id, []).append(fut)
        try:
            await self._ws.send(dump(GetReceipt(settlement_id, int(wait_s * 1000))))
            self.stats.messages_out += 1
            return await fut
        finally:
            _forget_future(self._queries, settlement_id, fut)
            del fut  # as in ``submit``

    async def _read(self, ws: ClientConnection) -> None:
        stats = self.stats
        try:
            async for frame in ws:
                stats.messages_in += 1
                try:
                    msg = load(frame)
                except LedgerError:
                    continue
                if isinstance(msg, Receipts):
                    for receipt in msg.receipts:
                        self._resolve_submit(receipt.tx_hash, receipt)
                elif isinstance(msg, Receipt):
                    self._resolve_submit(msg.tx_hash, msg)
                elif isinstance(msg, Rejected):
                    self._resolve_submit(msg.tx_hash, SubmitRejected(msg.reason))
                elif isinstance(msg, Busy):
                    stats.busy += 1
                    busy = SubmitBusy(f"{self.url}: too many submissions waiting, try later")
                    self._resolve_submit(msg.tx_hash, busy)
                elif isinstance(msg, ReceiptDoc):
                    for fut in self._queries.pop(msg.settlement_id, []):
                        if not fut.done():
                            fut.set_result(msg.document)
        except WebSocketException as exc:
            stats.up = False
            if (
                isinstance(exc, ConnectionClosed)
                and exc.rcvd is not None
                and exc.rcvd.code == POLICY_VIOLATION
            ):
                stats.handshake_refused += 1  # the validator refused this end's proof
            self._fail_all(exc)
            return
        stats.up = False
        self._fail_all(ConnectionError(f"{self.url}: connection closed"))

    def _resolve_submit(self, key: bytes, outcome: Receipt | Exception) -> None:
        if not key:  # a validator that names no transaction: one submission in flight
            key = next(iter(self._submits), b"")
        for fut in self._submits.pop(key, []):
            if fut.done():
                continue
            if isinstance(outcome, Receipt):
                fut.set_result(outcome)
            else:
                fut.set_exception(outcome)

    def _fail_all(self, exc: Exception) -> None:
        pending: list[asyncio.Future[Any]] = []
        for submits in self._submits.values():
            pending.extend(submits)
        for queries in self._queries.values():
            pending.extend(queries)
        for fut in pending:
            if not fut.done():
                fut.set_exception(exc)
        self._submits.clear()
        self._queries.clear()


def _forget_future(
    waiting: dict[Any, list[asyncio.Future[Any]]], key: Any, fut: asyncio.Future[Any]
) -> None:
    """Take a finished or abandoned call out of the table its answer is matched in."""
    futures = waiting.get(key)
    if futures is None:
        return
    with contextlib.suppress(ValueError):
        futures.remove(fut)
    if not futures:
        del waiting[key]
