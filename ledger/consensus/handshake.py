"""The opening of every connection to a validator: who is on the other end, in what role.

Both ends start by sending a :class:`Hello`: the chain id, a fresh 32-byte nonce and the
role the sender takes. A **validator** then proves it holds a validator key, and a
**submitter** that it holds a key the ledger knows as a signer of transactions (an authorised
CSMS key or the aggregator's), with an :class:`Auth`: its address and a signature over the
other end's nonce, its own nonce, its side of the connection (``dialer`` or ``listener``)
and the chain id (domain ``v2g/peer-auth/v1``). The other end's fresh nonce makes a recorded
signature useless on any later connection; the chain id makes it useless on another chain;
the side keeps a listener's proof from being reflected back as a dialer's.

A submitter (the CSMS, the aggregator's top-ups, the load drivers) may submit transactions,
each signed by the key it proved, and read. A **client** declares the role and proves
nothing: it may only read blocks, receipts and status. Neither may send consensus messages.
The listener always proves its own key, so a dialer that has the genesis file can check it
reached a validator.

This module holds the messages and the checks, with no I/O (``peers.py`` runs the exchange).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ledger.canonical import signing_bytes
from ledger.consensus.errors import HandshakeFailed
from ledger.keys import SigningKey, key_id_of, sign, verify

DOMAIN_PEER_AUTH = "v2g/peer-auth/v1"
NONCE_BYTES = 32


class Role(StrEnum):
    VALIDATOR = "validator"
    SUBMITTER = "submitter"  # proves a signer key: may submit (its own transactions) and read
    CLIENT = "client"  # proves nothing: may read


PROVING_ROLES = (Role.VALIDATOR, Role.SUBMITTER)


class Side(StrEnum):
    DIALER = "dialer"
    LISTENER = "listener"


# What an end can read besides one frame per message, declared in its hello (an end that
# declares nothing, as older versions, gets and is sent one frame per message).
BATCHES = "batches"  # submissions in one frame (``SubmitBatch``), receipts in one (``Receipts``)
FEATURES = (BATCHES,)


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame each end sends. ``features``: what it reads besides one frame per
    message (older versions send none and ignore the other end's)."""

    chain_id: str
    nonce: bytes
    role: Role
    features: tuple[str, ...] = ()

    @property
    def batches(self) -> bool:
        return BATCHES in self.features


@dataclass(frozen=True, slots=True)
class Auth:
    """A validator's proof of its key, answering the other end's ``Hello``."""

    address: str
    signature: bytes


# address -> public key of a validator that may take part (None: not one)
ValidatorKeys = Callable[[str], bytes | None]
# key id -> public key of a transaction signer that may submit (None: not one)
SubmitterKeys = Callable[[str], bytes | None]


def new_hello(chain_id: str, role: Role) -> Hello:
    return Hello(chain_id, os.urandom(NONCE_BYTES), role, FEATURES)


def auth_sign_bytes(
    chain_id: str, side: Side, address: str, challenge: bytes, nonce: bytes
) -> bytes:
    """What a validator signs: the other end's ``challenge``, its own ``nonce``, its side
    and address, under the chain id and the peer-auth domain tag."""
    payload = {
        "address": address,
        "challenge": challenge.hex(),
        "nonce": nonce.hex(),
        "side": str(side),
    }
    return signing_bytes(DOMAIN_PEER_AUTH, chain_id, payload)


def prove(key: SigningKey, chain_id: str, side: Side, mine: Hello, theirs: Hello) -> Auth:
    """The ``Auth`` that answers ``theirs`` (the other end's hello) from this end's ``mine``."""
    address = key_id_of(key)
    message = auth_sign_bytes(chain_id, side, address, theirs.nonce, mine.nonce)
    return Auth(address, sign(key, message))


def check_hello(hello: Hello, chain_id: str) -> None:
    """Raise ``HandshakeFailed`` unless ``hello`` is for ``chain_id`` with a full nonce."""
    if hello.chain_id != chain_id:
        raise HandshakeFailed(f"chain id {hello.chain_id!r:.80} is not this chain ({chain_id!r})")
    if len(hello.nonce) != NONCE_BYTES:
        raise HandshakeFailed(f"nonce must be {NONCE_BYTES} bytes, got {len(hello.nonce)}")


def check_auth(
    auth: Auth,
    *,
    chain_id: str,
    side: Side,
    mine: Hello,
    theirs: Hello,
    validators: ValidatorKeys,
    member: str = "validator",
) -> str:
    """The address ``auth`` proves (signed by the end on ``side``, answering this end's
    ``mine``); ``HandshakeFailed`` if ``validators`` (the keys of the ``member`` kind asked
    for) does not know it or the signature fails."""
    public_key = validators(auth.address)
    if public_key is None:
        raise HandshakeFailed(f"{auth.address!r:.80} is not a {member} of this chain")
    message = auth_sign_bytes(chain_id, side, auth.address, mine.nonce, theirs.nonce)
    if not verify(public_key, message, auth.signature):
        raise HandshakeFailed(f"{member} {auth.address}: the signature does not verify")
    return auth.address
