"""The CSMS's side of the ledger port: submit signed settlements to the validators.

``ValidatorLedger`` talks to validators over websockets (running elsewhere, or the embedded
set inside this process): ``submit`` returns once a block commits the transaction; the
self-contained receipt document (Merkle path, header, certificate) is fetched after that,
once the block is in the validators' stores.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from csms.outbox import LedgerReceipt, LedgerRejected, LedgerUnavailable
from ledger.consensus.client import SubmitFailed, fetch_receipt, submit_tx
from ledger.consensus.errors import SubmitRejected
from ledger.genesis import Genesis
from ledger.types import Tx

log = logging.getLogger(__name__)


class ValidatorLedger:
    """``LedgerClient`` over the validators' websocket endpoints."""

    def __init__(self, urls: Sequence[str], genesis: Genesis, *, timeout_s: float = 30.0) -> None:
        if not urls:
            raise ValueError("no validator URLs to submit to")
        self.urls = list(urls)
        self.genesis = genesis
        self.timeout_s = timeout_s

    async def submit(self, tx: bytes) -> LedgerReceipt:
        try:
            receipt = await submit_tx(self.urls, Tx(tx), timeout_s=self.timeout_s)
        except SubmitRejected as exc:
            raise LedgerRejected(str(exc)) from None
        except SubmitFailed as exc:
            raise LedgerUnavailable(str(exc)) from None
        return LedgerReceipt(receipt.height, receipt.block_id.hex(), receipt.index, {})

    async def receipt_document(self, settlement_id: str) -> dict[str, Any] | None:
        """The receipt a driver can verify offline, or None while the block is not stored."""
        try:
            # a document that does not verify against genesis is not taken from any validator
            return await fetch_receipt(self.urls, settlement_id, wait_s=2.0, genesis=self.genesis)
        except (SubmitFailed, OSError) as exc:
            log.info("receipt of %s not available yet: %s", settlement_id, exc)
            return None
