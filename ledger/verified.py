"""Consensus signatures this process has already verified, so that it verifies each once.

Validators embedded in one process (``v2g csms``) each check every vote, proposal and
commit certificate the others sign, and a validator checks a block's certificate again
when it stores the block and when the next block carries it. An Ed25519 check depends only
on the public key, the message and the signature, so a success is remembered here by all
three (the message compared whole, not by a digest): a later check of the very same triple
is answered from memory. Failures are not remembered (a forged signature costs its sender a
check each time, as before, and can never enter). Bounded: the oldest entries go first.

Transactions are not checked through here: ``ledger.checked`` keeps their outcome along
with the decoded record.
"""

from __future__ import annotations

import threading

from ledger.keys import verify

VERIFIED_LIMIT = 8192  # ~4 validators x ~10 signatures per height, for many heights


class VerifiedSignatures:
    """A bounded set of (public key, message, signature) triples that verified. Safe to
    share between threads (a full chain verification may run in one)."""

    def __init__(self, limit: int = VERIFIED_LIMIT) -> None:
        self._seen: dict[tuple[bytes, bytes, bytes], None] = {}
        self._limit = limit
        self._lock = threading.Lock()
        self.checks = 0  # Ed25519 checks run
        self.hits = 0  # checks answered from memory

    def __len__(self) -> int:
        return len(self._seen)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """``ledger.keys.verify``, run at most once per successful triple."""
        entry = (public_key, message, signature)
        with self._lock:
            if entry in self._seen:
                self.hits += 1
                return True
            self.checks += 1
        if not verify(public_key, message, signature):
            return False
        with self._lock:
            while len(self._seen) >= self._limit:
                del self._seen[next(iter(self._seen))]
            self._seen[entry] = None
        return True


VERIFIED = VerifiedSignatures()  # the process's own


def verify_once(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` under
    ``public_key``; a triple this process verified before is not checked again."""
    return VERIFIED.verify(public_key, message, signature)
