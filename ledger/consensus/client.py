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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ledger.codec import tx_hash, tx_record
from ledger.consensus.errors import ConsensusError, SubmitRejected
from ledger.consensus.wire import (
    GetReceipt,
    Receipt,
    ReceiptDoc,
    Rejected,
    TxMsg,
    dump,
    load,
)
from ledger.errors import LedgerError
from ledger.genesis import Genesis
from ledger.receipt import receipt_from_dict, verify_receipt
from ledger.types import Tx

MAX_FRAME = 16 * 1024 * 1024


class SubmitFailed(ConsensusError):
    """No validator could be reached or none answered before the deadline."""


async def submit_tx(urls: Sequence[str], tx: Tx, *, timeout_s: float = 30.0) -> Receipt:
    """Send ``tx`` to the first validator that takes it; return its commit receipt.

    Raises ``SubmitRejected`` when a validator refuses it (invalid: trying others would not
    help) and ``SubmitFailed`` when no validator answered in ``timeout_s`` seconds each.
    """
    errors: list[str] = []
    for url in urls:
        try:
            async with asyncio.timeout(timeout_s), ValidatorSession(url) as session:
                return await session.submit(tx)
        except (TimeoutError, OSError, WebSocketException) as exc:
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    raise SubmitFailed("no validator committed the transaction: " + "; ".join(errors))


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
    for url in urls:
        try:
            async with asyncio.timeout(wait_s + 5), ValidatorSession(url) as session:
                doc = await session.get_receipt(settlement_id, wait_s=wait_s)
        except (TimeoutError, OSError, WebSocketException):
            continue
        if doc is None:
            continue
        if genesis is not None:
            try:
                verify_receipt(receipt_from_dict(doc), genesis)
            except LedgerError:
                continue
        return doc
    return None


async def submit_with_receipt(
    urls: Sequence[str],
    tx: Tx,
    *,
    timeout_s: float = 30.0,
    wait_s: float = 2.0,
    genesis: Genesis | None = None,
) -> tuple[Receipt, dict[str, Any] | None]:
    """``submit_tx``, then the receipt document asked for on the same connection (the
    validator that answered has stored the block): one connection, no wait for another.

    The document is None when the transaction has no settlement id, the validator did not
    give it within ``wait_s``, or it does not verify against ``genesis``.
    """
    settlement_id = tx_record(tx).get("settlement_id")
    errors: list[str] = []
    for url in urls:
        try:
            async with asyncio.timeout(timeout_s), ValidatorSession(url) as session:
                receipt = await session.submit(tx)
                doc = await _receipt_on(session, settlement_id, wait_s)
        except (TimeoutError, OSError, WebSocketException) as exc:
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
            continue
        if doc is not None and genesis is not None:
            try:
                verify_receipt(receipt_from_dict(doc), genesis)
            except LedgerError:
                doc = None
        return receipt, doc
    raise SubmitFailed("no validator committed the transaction: " + "; ".join(errors))


async def _receipt_on(
    session: ValidatorSession, settlement_id: object, wait_s: float
) -> dict[str, Any] | None:
    if not isinstance(settlement_id, str):
        return None
    try:
        async with asyncio.timeout(wait_s + 1):
            return await session.get_receipt(settlement_id, wait_s=wait_s)
    except TimeoutError:
        return None


async def submit_and_fetch(
    urls: Sequence[str],
    tx: Tx,
    *,
    timeout_s: float = 30.0,
    genesis: Genesis | None = None,
) -> tuple[Receipt, dict[str, Any]]:
    """Submit a settlement (or credit) and return its commit receipt and receipt document."""
    receipt = await submit_tx(urls, tx, timeout_s=timeout_s)
    settlement_id = tx_record(tx)["settlement_id"]
    doc = await fetch_receipt(urls, settlement_id, wait_s=timeout_s, genesis=genesis)
    if doc is None:
        raise SubmitFailed(f"settlement {settlement_id} committed but no validator stored it")
    return receipt, doc


class ValidatorSession:
    """One websocket to a validator with any number of submissions and queries in flight.

    Replies are matched by transaction hash (submissions) or settlement id (receipts). A
    dropped connection fails every call in flight with the ``WebSocketException``.
    """

    def __init__(self, url: str, *, open_timeout_s: float = 5.0) -> None:
        self.url = url
        self._open_timeout = open_timeout_s
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._submits: dict[bytes, list[asyncio.Future[Receipt]]] = {}
        self._queries: dict[str, list[asyncio.Future[dict[str, Any] | None]]] = {}

    async def __aenter__(self) -> ValidatorSession:
        self._ws = await connect(
            self.url, open_timeout=self._open_timeout, max_size=MAX_FRAME, compression=None
        )
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
        self._fail_all(ConnectionError(f"{self.url}: session closed"))

    async def submit(self, tx: Tx) -> Receipt:
        """Send ``tx``; return its receipt once committed (``SubmitRejected`` if invalid)."""
        assert self._ws is not None, "use `async with ValidatorSession(url)`"
        fut: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._submits.setdefault(tx_hash(tx), []).append(fut)
        await self._ws.send(dump(TxMsg(tx, submit=True)))
        return await fut

    async def get_receipt(
        self, settlement_id: str, *, wait_s: float = 0.0
    ) -> dict[str, Any] | None:
        """The receipt document of ``settlement_id`` once stored (None after ``wait_s``)."""
        assert self._ws is not None, "use `async with ValidatorSession(url)`"
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._queries.setdefault(settlement_id, []).append(fut)
        await self._ws.send(dump(GetReceipt(settlement_id, int(wait_s * 1000))))
        return await fut

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                try:
                    msg = load(frame)
                except LedgerError:
                    continue
                if isinstance(msg, Receipt):
                    self._resolve_submit(msg.tx_hash, msg)
                elif isinstance(msg, Rejected):
                    self._resolve_submit(msg.tx_hash, SubmitRejected(msg.reason))
                elif isinstance(msg, ReceiptDoc):
                    for fut in self._queries.pop(msg.settlement_id, []):
                        if not fut.done():
                            fut.set_result(msg.document)
        except WebSocketException as exc:
            self._fail_all(exc)
            return
        self._fail_all(ConnectionError(f"{self.url}: connection closed"))

    def _resolve_submit(self, key: bytes, outcome: Receipt | SubmitRejected) -> None:
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
