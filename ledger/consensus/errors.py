"""Errors raised by the consensus package.

One tree, rooted at :class:`ConsensusError`::

    ConsensusError
    ├── InvalidValidatorSet   a set where one validator holds a third or more of the power
    ├── DoubleSignRefused     the private validator would sign a vote or proposal that conflicts
    │                         with one it already signed (or regresses height/round/step)
    ├── SignerStateError      the private validator's durable state is unreadable or inconsistent
    ├── EvidenceStoreError    the evidence file is corrupt before its last line
    ├── SubmitRejected        a submitted transaction fails validation against the state
    ├── SubmitBusy            a validator refused a submission for now (too many waiting)
    ├── HandshakeFailed       a connection's opening did not prove what it claimed (another
    │                         chain, not a validator, a signature that fails, a late answer)
    └── MetricsPortError      the metrics port asked for cannot be listened on
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Root of every error raised by ``ledger.consensus``."""


class InvalidValidatorSet(ConsensusError):
    """The validator set cannot run consensus safely (e.g. one validator holds >= 1/3 power)."""


class DoubleSignRefused(ConsensusError):
    """Signing would conflict with a vote or proposal already signed: refused."""


class SignerStateError(ConsensusError):
    """The persisted signer state is missing fields, corrupt or for another key or chain."""


class EvidenceStoreError(ConsensusError):
    """The evidence file has a corrupt record that is not a torn last write."""


class SubmitRejected(ConsensusError):
    """A submitted transaction failed validation against the committed state."""


class HandshakeFailed(ConsensusError):
    """A connection's opening handshake failed: the connection is closed, nothing read."""


class SubmitBusy(ConsensusError):
    """A validator has too many submissions waiting on the connection: not admitted, try
    again later or at another validator (unlike ``SubmitRejected``, nothing is wrong with it)."""


class MetricsPortError(ConsensusError):
    """The validator's metrics port cannot be listened on (the message names where and why)."""
