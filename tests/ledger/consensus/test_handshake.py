"""The handshake's proofs without sockets: what a signature binds, and what it refuses."""

from __future__ import annotations

import pytest

from ledger.consensus.errors import HandshakeFailed
from ledger.consensus.handshake import (
    Hello,
    Role,
    Side,
    check_auth,
    check_hello,
    new_hello,
    prove,
)
from ledger.keys import SigningKey, generate_key, key_id_of, public_bytes

CHAIN = "test-chain"


def members(*keys: SigningKey) -> dict[str, bytes]:
    return {key_id_of(k): public_bytes(k) for k in keys}


def test_a_dialers_proof_is_accepted_by_the_listener_it_answers() -> None:
    key = generate_key()
    listener, dialer = new_hello(CHAIN, Role.VALIDATOR), new_hello(CHAIN, Role.VALIDATOR)
    auth = prove(key, CHAIN, Side.DIALER, dialer, listener)
    keys = members(key)
    found = check_auth(
        auth, chain_id=CHAIN, side=Side.DIALER, mine=listener, theirs=dialer, validators=keys.get
    )
    assert found == key_id_of(key)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("replayed", "signature does not verify"),  # the same proof, a new listener nonce
        ("other_chain", "signature does not verify"),
        ("reflected", "signature does not verify"),  # a listener's proof used as a dialer's
        ("stranger", "is not a validator"),
    ],
)
def test_a_proof_is_refused_on_another_connection_chain_side_or_key(
    change: str, reason: str
) -> None:
    key = generate_key()
    listener, dialer = new_hello(CHAIN, Role.VALIDATOR), new_hello(CHAIN, Role.VALIDATOR)
    side, chain = Side.DIALER, CHAIN
    signer = key
    if change == "other_chain":
        chain = "another-chain"
    if change == "reflected":
        side = Side.LISTENER
    if change == "stranger":
        signer = generate_key()
    auth = prove(signer, chain, side, dialer, listener)
    if change == "replayed":
        listener = new_hello(CHAIN, Role.VALIDATOR)
    keys = members(key)
    with pytest.raises(HandshakeFailed, match=reason):
        check_auth(
            auth,
            chain_id=CHAIN,
            side=Side.DIALER,
            mine=listener,
            theirs=dialer,
            validators=keys.get,
        )


def test_a_hello_for_another_chain_or_with_a_short_nonce_is_refused() -> None:
    check_hello(new_hello(CHAIN, Role.CLIENT), CHAIN)
    with pytest.raises(HandshakeFailed, match="another-chain"):
        check_hello(new_hello("another-chain", Role.CLIENT), CHAIN)
    with pytest.raises(HandshakeFailed, match="32 bytes"):
        check_hello(Hello(CHAIN, b"\x00" * 8, Role.CLIENT), CHAIN)


def test_each_hello_has_a_fresh_nonce() -> None:
    assert new_hello(CHAIN, Role.CLIENT).nonce != new_hello(CHAIN, Role.CLIENT).nonce
