"""What a validator hands out on request: blocks to a peer catching up, receipt documents and
submission answers to clients. Reads the store only; answers go through the requester's
``reply`` (a connection that has closed meanwhile gets none)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.exceptions import WebSocketException

from ledger.codec import tx_hash
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.peers import Reply
from ledger.consensus.wire import BlockMsg, GetReceipt, Message, Receipt, ReceiptDoc, Rejected
from ledger.errors import StoreError
from ledger.receipt import build_receipt, receipt_to_dict
from ledger.store import BlockStore
from ledger.types import Tx

BLOCKS_PER_REQUEST = 50
MAX_RECEIPT_WAIT_MS = 60_000
RECEIPT_POLL_S = 0.05


async def send_blocks(store: BlockStore, from_height: int, reply: Reply) -> None:
    """Stored blocks from ``from_height`` (a bounded run) with their certificates; the first
    also carries the certificate of the block below (the canonical one its header binds)."""
    if from_height < 1:
        return
    top = min(await store.height(), from_height + BLOCKS_PER_REQUEST - 1)
    below = await store.get(from_height - 1) if from_height > 1 else None
    last = below.commit if below is not None else None
    for height in range(from_height, top + 1):
        stored = await store.get(height)
        if stored is None or stored.commit is None:
            return
        await reply(BlockMsg(stored.block, stored.commit, last))
        last = None


async def receipt_document(store: BlockStore, settlement_id: str) -> dict[str, Any] | None:
    """The self-contained receipt of a settlement in the store (None if not stored)."""
    try:
        return receipt_to_dict(await build_receipt(store, settlement_id))
    except StoreError:
        return None


async def wait_receipt_document(
    store: BlockStore,
    settlement_id: str,
    wait_ms: int,
    stored_signal: Callable[[], asyncio.Event] | None = None,
) -> dict[str, Any] | None:
    """``receipt_document``, waiting up to ``wait_ms`` for a block that holds it: looked for
    again each time ``stored_signal()`` (the event of the next stored block) is set, or every
    ``RECEIPT_POLL_S`` without one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait_ms, MAX_RECEIPT_WAIT_MS) / 1000
    while True:
        signal = stored_signal() if stored_signal is not None else None
        doc = await receipt_document(store, settlement_id)
        remaining = deadline - loop.time()
        if doc is not None or remaining <= 0:
            return doc
        if signal is None:
            await asyncio.sleep(min(RECEIPT_POLL_S, remaining))
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await signal.wait()


async def answer_submit(submit: Callable[[Tx], Awaitable[Receipt]], tx: Tx, reply: Reply) -> None:
    """Answer a client's submission with its receipt once committed, or why it was refused."""
    answer: Message
    try:
        answer = await submit(tx)
    except SubmitRejected as exc:
        answer = Rejected(str(exc), tx_hash(tx))
    with contextlib.suppress(WebSocketException):
        await reply(answer)


async def answer_receipt(
    store: BlockStore,
    msg: GetReceipt,
    reply: Reply,
    stored_signal: Callable[[], asyncio.Event],
) -> None:
    """Answer with the receipt document, waiting for its block up to the asked wait."""
    doc = await wait_receipt_document(store, msg.settlement_id, msg.wait_ms, stored_signal)
    with contextlib.suppress(WebSocketException):
        await reply(ReceiptDoc(msg.settlement_id, doc))
