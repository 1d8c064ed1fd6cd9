"""The CSMS's side of the ledger port: submit signed settlements to the validators.

``ValidatorLedger`` talks to validators over websockets (running elsewhere, or the embedded
set inside this process) as a submitter (``ledger.consensus.handshake``): each connection
proves the CSMS's settlement key once, so the validators take the settlements it signed on
that connection (never votes), and checks that it reached a validator of its genesis. It keeps one
connection per validator for all settlements. ``submit`` returns once a block commits the
transaction. The
validator that answers has stored the block (with the certificate it decided on), so the
self-contained receipt document (Merkle path, header, certificate) is asked for on the same
connection and kept for ``receipt_document``; failing that, it is fetched later.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from csms.outbox import LedgerReceipt, LedgerRejected, LedgerUnavailable
from ledger.consensus.client import SubmitFailed, ValidatorClient
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.linkstats import LinkStats
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.types import Tx

log = logging.getLogger(__name__)


class ValidatorLedger:
    """``LedgerClient`` over the validators' websocket endpoints."""

    def __init__(
        self,
        urls: Sequence[str],
        genesis: Genesis,
        *,
        key: SigningKey,
        timeout_s: float = 30.0,
    ) -> None:
        if not urls:
            raise ValueError("no validator URLs to submit to")
        self.urls = list(urls)
        self.genesis = genesis
        self.timeout_s = timeout_s
        self._client = ValidatorClient(self.urls, genesis=genesis, key=key)

    async def submit(self, tx: bytes) -> LedgerReceipt:
        try:
            receipt, doc = await self._client.submit_with_receipt(Tx(tx), timeout_s=self.timeout_s)
        except SubmitRejected as exc:
            raise LedgerRejected(str(exc)) from None
        except SubmitFailed as exc:
            raise LedgerUnavailable(str(exc)) from None
        # the document (verified against genesis) is stored with the commit, in one write
        return LedgerReceipt(receipt.height, receipt.block_id.hex(), receipt.index, doc or {})

    async def receipt_document(self, settlement_id: str) -> dict[str, Any] | None:
        """The receipt a driver can verify offline, or None while the block is not stored."""
        try:
            # a document that does not verify against genesis is not taken from any validator
            return await self._client.fetch_receipt(settlement_id, wait_s=2.0)
        except (SubmitFailed, OSError) as exc:
            log.info("receipt of %s not available yet: %s", settlement_id, exc)
            return None

    def links(self) -> dict[str, LinkStats]:
        """The counters of the connection to each validator, by URL (copies)."""
        return {url: dataclasses.replace(stats) for url, stats in self._client.links.items()}

    async def close(self) -> None:
        """Close the connections to the validators."""
        await self._client.close()
