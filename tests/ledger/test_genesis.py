from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.errors import GenesisError
from ledger.genesis import (
    Genesis,
    genesis_from_dict,
    genesis_hash,
    genesis_json,
    genesis_to_dict,
    load_genesis,
)
from ledger.keys import generate_key, key_id_of, public_bytes
from ledger.types import Validator, ValidatorSet
from tests.ledger.builders import make_net


def vset(*powers: int) -> ValidatorSet:
    keys = [generate_key() for _ in powers]
    return ValidatorSet(
        tuple(
            Validator(key_id_of(k), public_bytes(k), p) for k, p in zip(keys, powers, strict=True)
        )
    )


@pytest.mark.parametrize("powers", [(10,), (10, 10), (10, 10, 10), (20, 10, 10, 10, 10)])
def test_one_third_or_more_is_refused(powers: tuple[int, ...]) -> None:
    with pytest.raises(GenesisError, match="a third or more"):
        Genesis("c", 0, vset(*powers), {}, public_bytes(generate_key()))


@pytest.mark.parametrize("powers", [(10, 10, 10, 10), (19, 10, 10, 10, 10), (1, 1, 1, 1, 1)])
def test_below_one_third_is_accepted(powers: tuple[int, ...]) -> None:
    Genesis("c", 0, vset(*powers), {}, public_bytes(generate_key()))


def test_round_trip_and_hash(tmp_path: Path) -> None:
    g = make_net().genesis
    assert genesis_from_dict(genesis_to_dict(g)) == g
    path = tmp_path / "genesis.json"
    path.write_text(genesis_json(g))
    assert load_genesis(path) == g
    assert genesis_hash(load_genesis(path)) == genesis_hash(g)
    assert genesis_hash(make_net().genesis) != genesis_hash(g)


def test_bad_files_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(path)
    path.write_text("[")
    with pytest.raises(GenesisError, match="not valid JSON"):
        load_genesis(path)
    data = genesis_to_dict(make_net().genesis)
    data["validators"][0]["power"] = 1.5
    path.write_text(json.dumps(data))
    with pytest.raises(GenesisError, match="power"):
        load_genesis(path)
    data = genesis_to_dict(make_net().genesis)
    data["validators"][0]["address"] = "00" * 20
    path.write_text(json.dumps(data))
    with pytest.raises(GenesisError, match=r"validators\[0\]\.address"):
        load_genesis(path)


def test_a_balance_beyond_the_integer_range_is_refused() -> None:
    from ledger.schema import INT_MAX

    document = genesis_to_dict(make_net().genesis)
    document["balances"] = {"ev:a": INT_MAX}
    assert genesis_from_dict(document).balances == {"ev:a": INT_MAX}
    document["balances"] = {"ev:a": INT_MAX + 1}
    with pytest.raises(GenesisError, match=r"balances\.ev:a: expected <= 9223372036854775807"):
        genesis_from_dict(document)
