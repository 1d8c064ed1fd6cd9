"""The ledger's one exception tree.

::

    LedgerError
    ├── EncodingError            bytes that are not canonical, floats, bad hex
    ├── KeyFileError             a key file that is missing, unreadable or malformed
    ├── GenesisError             a genesis file or a genesis request that is wrong
    ├── HomeError                a validator home or data dir that is missing or malformed
    ├── StoreError               a block store that cannot be read or written
    ├── ProofError               a Merkle inclusion proof that does not verify
    ├── TxError                  a transaction the state machine rejects
    │   ├── SchemaError              wrong fields, wrong types, non-integers
    │   ├── SignatureError           the signature does not verify
    │   ├── UnauthorisedSignerError  the signer is not an authorised CSMS key at that height
    │   ├── NotAggregatorError       a top-up or governance change not signed by the aggregator
    │   ├── IntervalSumError         intervals do not add up to the energy totals
    │   ├── AmountMismatchError      the amount differs from the rounding rule's result
    │   ├── DuplicateSettlementError a settlement_id already settled
    │   ├── DuplicateTransactionError an (operator, transaction_id) already settled
    │   ├── UnknownSettlementError   a credit that references no settlement
    │   ├── InsufficientBalanceError a ledger payment larger than the payer's balance
    │   ├── BalanceRangeError        a payment or top-up that takes a balance past 2**63 - 1
    │   ├── ReplayError              a transaction (or its id) committed before
    │   ├── GovernanceError          a validator or key change that breaks a set rule
    │   └── InvalidEvidenceError     double-sign evidence that proves nothing
    ├── BlockError               a block, header or certificate that is wrong at a height
    │   ├── CommitError              a commit certificate that does not verify
    │   └── PowError                 a proof-of-work seal that does not meet the target
    └── ReceiptError             a receipt that does not verify offline

Errors that compare a value carry ``expected`` and ``received`` and name both.
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every error raised by the ledger package."""


class EncodingError(LedgerError):
    """Data that cannot be canonically encoded or is not in canonical form."""


class KeyFileError(LedgerError):
    """A key file that is missing, unreadable or malformed."""


class GenesisError(LedgerError):
    """A genesis file or a genesis request that is wrong."""


class HomeError(LedgerError):
    """A validator home or data dir that is missing or malformed."""


class StoreError(LedgerError):
    """A block store that cannot be read or written."""


class ProofError(LedgerError):
    """A Merkle inclusion proof that does not verify."""


class TxError(LedgerError):
    """A transaction rejected by validation; names what was expected and received."""

    def __init__(self, message: str, *, expected: Any = None, received: Any = None) -> None:
        self.expected = expected
        self.received = received
        if expected is not None or received is not None:
            message = f"{message} (expected {expected!r}, received {received!r})"
        super().__init__(message)


class SchemaError(TxError):
    """Wrong fields, wrong types or a non-integer where an integer is required."""


class SignatureError(TxError):
    """The signature does not verify against the signer's key."""


class UnauthorisedSignerError(TxError):
    """The signer is not an authorised CSMS key at the block's height."""


class NotAggregatorError(TxError):
    """A top-up or governance change signed by a key other than the aggregator's."""


class IntervalSumError(TxError):
    """The intervals' energies do not add up to the stated totals."""


class AmountMismatchError(TxError):
    """The stated amount differs from ``ledger.amounts.settlement_amount``."""


class DuplicateSettlementError(TxError):
    """A settlement_id that is already settled."""


class DuplicateTransactionError(TxError):
    """An (operator, transaction_id) pair that is already settled."""


class UnknownSettlementError(TxError):
    """A credit that references no committed settlement (or one of another operator)."""


class InsufficientBalanceError(TxError):
    """A ledger payment larger than the paying account's balance."""


class BalanceRangeError(TxError):
    """A payment or top-up that would take an account's balance beyond the integer range
    every balance stays in (0 to 2**63 - 1, ``ledger.schema.INT_MAX``)."""


class ReplayError(TxError):
    """A transaction, or a transaction id, that was committed before."""


class GovernanceError(TxError):
    """A validator-set or key change that would break a rule (e.g. one validator >= 1/3)."""


class InvalidEvidenceError(TxError):
    """Double-sign evidence whose votes do not prove a double sign."""


class BlockError(LedgerError):
    """A block, header or certificate that is wrong at ``height``."""

    def __init__(self, height: int, message: str) -> None:
        self.height = height
        self.detail = message
        super().__init__(f"height {height}: {message}")


class CommitError(BlockError):
    """A commit certificate that does not verify."""


class PowError(BlockError):
    """A proof-of-work seal that does not meet the target."""


class ReceiptError(LedgerError):
    """A receipt that does not verify offline."""
