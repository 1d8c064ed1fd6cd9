"""The genesis document: chain id, validators and power, authorised CSMS keys, aggregator.

``sealing`` is ``"bft"`` (blocks carry a commit certificate of the validator set) or
``"pow"`` (the paper's alternative for a single open node: a block is sealed when its id
has ``pow_bits`` leading zero bits). A BFT genesis where one validator holds a third of
the power or more is refused: such a validator could stall the chain alone.

A validator entry may also carry ``url``, where it listens (``ws://HOST:PORT``), so a client
with only the genesis file can reach validators on other hosts. Addresses are not part of
the chain's identity: ``genesis_hash`` leaves them out, and they may change without a new
chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.canonical import DOMAIN_GENESIS, digest, encode, from_hex
from ledger.codec import expect_fields, expect_int, expect_str, validator_set_to_list
from ledger.errors import EncodingError, GenesisError
from ledger.keys import key_id
from ledger.schema import INT_MAX
from ledger.types import Validator, ValidatorSet

SEALINGS = ("bft", "pow")


def check_power_distribution(vset: ValidatorSet) -> None:
    """Refuse a set that is empty or where one validator holds >= 1/3 of the power."""
    if not vset.validators:
        raise GenesisError("a BFT validator set needs at least one validator")
    total = vset.total_power
    for v in vset.validators:
        if 3 * v.power >= total:
            raise GenesisError(
                f"validator {v.address} holds power {v.power} of {total}, a third or more: "
                f"BFT needs every validator below one third "
                f"(with equal power, at least 4 validators)"
            )


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time: int  # Unix ms
    validators: ValidatorSet
    csms_keys: Mapping[str, bytes]  # key id -> raw public key
    aggregator_key: bytes
    balances: Mapping[str, int] = field(default_factory=dict)
    sealing: str = "bft"
    pow_bits: int = 0
    urls: Mapping[str, str] = field(default_factory=dict)  # validator address -> ws:// URL

    def __post_init__(self) -> None:
        if not self.chain_id:
            raise GenesisError("chain_id must not be empty")
        if self.sealing not in SEALINGS:
            raise GenesisError(f"sealing must be one of {SEALINGS}, got {self.sealing!r}")
        if self.sealing == "bft":
            check_power_distribution(self.validators)
        elif not 1 <= self.pow_bits <= 64:
            raise GenesisError(f"pow_bits must be 1..64, got {self.pow_bits}")
        for kid, pub in self.csms_keys.items():
            if key_id(pub) != kid:
                raise GenesisError(f"CSMS key id {kid} does not match its public key")

    @property
    def aggregator_id(self) -> str:
        return key_id(self.aggregator_key)


def genesis_to_dict(g: Genesis) -> dict[str, Any]:
    return {
        "chain_id": g.chain_id,
        "genesis_time": g.genesis_time,
        "sealing": g.sealing,
        "pow_bits": g.pow_bits,
        "validators": validator_set_to_list(g.validators),
        "csms_keys": [{"key_id": k, "public_key": p.hex()} for k, p in sorted(g.csms_keys.items())],
        "aggregator_key": {"key_id": g.aggregator_id, "public_key": g.aggregator_key.hex()},
        "balances": dict(sorted(g.balances.items())),
    }


def genesis_from_dict(data: Any) -> Genesis:
    """Parse and check a genesis document; raise ``GenesisError`` naming what is wrong."""
    if not isinstance(data, Mapping) or "chain_id" not in data or "validators" not in data:
        raise GenesisError("not a genesis document (expected an object with chain_id, validators)")
    try:
        fields = (
            "chain_id",
            "genesis_time",
            "sealing",
            "pow_bits",
            "validators",
            "csms_keys",
            "aggregator_key",
            "balances",
        )
        d = expect_fields(data, fields, "genesis")
        validators = []
        urls: dict[str, str] = {}
        for i, v in enumerate(d["validators"] if isinstance(d["validators"], list) else [None]):
            names: tuple[str, ...] = ("address", "public_key", "power")
            if isinstance(v, Mapping) and "url" in v:
                names += ("url",)
                urls[str(v.get("address"))] = _url(v["url"], f"validators[{i}].url")
            e = expect_fields(v, names, f"validators[{i}]")
            pub = from_hex(e["public_key"], field=f"validators[{i}].public_key", length=32)
            if e["address"] != key_id(pub):
                raise GenesisError(f"validators[{i}].address does not match its public key")
            validators.append(
                Validator(key_id(pub), pub, expect_int(e["power"], "power", minimum=1))
            )
        csms: dict[str, bytes] = {}
        for i, k in enumerate(d["csms_keys"] if isinstance(d["csms_keys"], list) else [None]):
            e = expect_fields(k, ("key_id", "public_key"), f"csms_keys[{i}]")
            csms[expect_str(e["key_id"], "key_id")] = from_hex(
                e["public_key"], field=f"csms_keys[{i}].public_key", length=32
            )
        agg = expect_fields(d["aggregator_key"], ("key_id", "public_key"), "aggregator_key")
        agg_pub = from_hex(agg["public_key"], field="aggregator_key.public_key", length=32)
        if agg["key_id"] != key_id(agg_pub):
            raise GenesisError("aggregator_key.key_id does not match its public key")
        balances = d["balances"]
        if not isinstance(balances, Mapping):
            raise GenesisError("balances: expected an object")
        return Genesis(
            chain_id=expect_str(d["chain_id"], "chain_id"),
            genesis_time=expect_int(d["genesis_time"], "genesis_time", minimum=0),
            validators=ValidatorSet(tuple(validators)),
            csms_keys=csms,
            aggregator_key=agg_pub,
            balances={
                str(a): expect_int(b, f"balances.{a}", minimum=0, maximum=INT_MAX)
                for a, b in balances.items()
            },
            sealing=expect_str(d["sealing"], "sealing"),
            pow_bits=expect_int(d["pow_bits"], "pow_bits", minimum=0),
            urls=urls,
        )
    except (EncodingError, ValueError) as exc:
        raise GenesisError(str(exc)) from exc


def _url(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(("ws://", "wss://")):
        raise GenesisError(f"{what}: expected a ws:// or wss:// URL, got {value!r:.60}")
    return value


def genesis_hash(g: Genesis) -> bytes:
    """The hash that block 1's ``prev_hash`` points to: it binds the chain to its genesis."""
    return digest(DOMAIN_GENESIS, genesis_to_dict(g))


def genesis_json(g: Genesis) -> str:
    """The genesis file's text: canonical content, indented for people to read, with each
    validator's ``url`` when known."""
    data = json.loads(encode(genesis_to_dict(g)))
    for entry in data["validators"]:
        if entry["address"] in g.urls:
            entry["url"] = g.urls[entry["address"]]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_genesis(path: Path) -> Genesis:
    """Read a genesis file; errors name the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GenesisError(f"{path}: cannot read: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenesisError(f"{path}: not valid JSON, so not a genesis file: {exc}") from exc
    try:
        return genesis_from_dict(data)
    except GenesisError as exc:
        raise GenesisError(f"{path}: {exc}") from exc
