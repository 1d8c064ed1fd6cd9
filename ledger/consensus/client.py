"""Submitting a transaction to running validators and waiting for its receipt.

The CSMS outbox's narrow port to the ledger: ``await submit_tx(urls, tx)`` tries the
validators in turn until one accepts the transaction and answers once a block commits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from ledger.consensus.errors import ConsensusError, SubmitRejected
from ledger.consensus.wire import Receipt, Rejected, TxMsg, dump, load
from ledger.errors import LedgerError
from ledger.types import Tx


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
            async with asyncio.timeout(timeout_s), connect(url, open_timeout=5) as ws:
                await ws.send(dump(TxMsg(tx, submit=True)))
                async for frame in ws:
                    try:
                        msg = load(frame)
                    except LedgerError:
                        continue
                    if isinstance(msg, Receipt):
                        return msg
                    if isinstance(msg, Rejected):
                        raise SubmitRejected(msg.reason)
        except (TimeoutError, OSError, WebSocketException) as exc:
            errors.append(f"{url}: {type(exc).__name__}: {exc}")
    raise SubmitFailed("no validator committed the transaction: " + "; ".join(errors))
