"""Ledger state: what committed blocks have established, and its hash.

The state after height ``h`` holds the validator set and CSMS keys in force at ``h+1``
and those for ``h+2`` (governance changes take effect two heights after commit), ledger
account balances, settled ids, and a history digest. Settled ids, used ids and accounts
grow without bound, so they live in structure-sharing ``LayeredMap``/``LayeredSet``s, and
the state hash commits to them through ``history``: a hash chain over what each block
added and every balance it changed, rather than re-hashing them all at every block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ledger.canonical import DOMAIN_STATE, digest
from ledger.codec import validators_hash
from ledger.genesis import Genesis, genesis_hash
from ledger.keys import key_id
from ledger.layered import LayeredMap, LayeredSet
from ledger.types import ValidatorSet


@dataclass(frozen=True, slots=True)
class SettledRef:
    """What the ledger remembers of a committed settlement or credit."""

    kind: str
    operator: str
    transaction_id: str
    height: int


@dataclass(frozen=True, slots=True)
class State:
    """The ledger state after block ``height`` (0: genesis). Never mutated."""

    chain_id: str
    height: int
    time: int
    last_block_id: bytes
    validators: ValidatorSet
    next_validators: ValidatorSet
    csms_keys: Mapping[str, bytes]
    next_csms_keys: Mapping[str, bytes]
    aggregator_id: str
    aggregator_key: bytes
    balances: Mapping[str, int]
    settlements: Mapping[str, SettledRef]
    settled_transactions: AbstractSet[tuple[str, str]]
    used_ids: AbstractSet[str]
    history: bytes
    sealing: str = "bft"
    pow_bits: int = 0
    known_validators: Mapping[str, bytes] = field(default_factory=dict)


def frozen_map(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


def genesis_state(g: Genesis) -> State:
    """The state before block 1."""
    keys = frozen_map(g.csms_keys)
    return State(
        chain_id=g.chain_id,
        height=0,
        time=g.genesis_time,
        last_block_id=genesis_hash(g),
        validators=g.validators,
        next_validators=g.validators,
        csms_keys=keys,
        next_csms_keys=keys,
        aggregator_id=key_id(g.aggregator_key),
        aggregator_key=g.aggregator_key,
        balances=LayeredMap(g.balances),
        settlements=LayeredMap(),
        settled_transactions=LayeredSet(),
        used_ids=LayeredSet(),
        history=bytes(32),
        sealing=g.sealing,
        pow_bits=g.pow_bits,
        known_validators=frozen_map({v.address: v.public_key for v in g.validators.validators}),
    )


def state_hash(state: State) -> bytes:
    """The hash a header's ``state_hash`` carries for the state after that block.

    Balances and settled ids enter through ``history``; the genesis balances through the
    genesis hash that block 1 links to.
    """
    return digest(
        DOMAIN_STATE,
        {
            "chain_id": state.chain_id,
            "height": state.height,
            "validators_hash": validators_hash(state.validators).hex(),
            "next_validators_hash": validators_hash(state.next_validators).hex(),
            "csms_keys": {k: v.hex() for k, v in state.csms_keys.items()},
            "next_csms_keys": {k: v.hex() for k, v in state.next_csms_keys.items()},
            "history": state.history.hex(),
        },
    )


def derive_map(base: Mapping[Any, Any], changes: Mapping[Any, Any]) -> LayeredMap[Any, Any]:
    """``base`` with ``changes`` applied, sharing ``base``'s layers when it has them."""
    layered = base if isinstance(base, LayeredMap) else LayeredMap(base)
    return layered.derive(changes)


def derive_set(base: AbstractSet[Any], added: Iterable[Any]) -> LayeredSet[Any]:
    layered = base if isinstance(base, LayeredSet) else LayeredSet(base)
    return layered.derive(added)
