from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ledger.consensus.limits import ConnectionCaps
from ledger.errors import GenesisError, LedgerError
from ledger.home import HomeError, init_data_dir, load_home, load_home_genesis, load_validator_key
from ledger.keys import key_id_of


def test_init_writes_a_consistent_layout(tmp_path: Path) -> None:
    genesis = init_data_dir(tmp_path, validators=5, chain_id="c1", genesis_time=1, base_port=30000)
    ports = set()
    for i in range(5):
        config = load_home(tmp_path / "validators" / f"v{i}")
        assert config.listen_host == "127.0.0.1"
        ports.add(config.listen_port)
        assert len(config.peers) == 4 and all("127.0.0.1" in p.url for p in config.peers)
        assert genesis.validators.get(config.address) is not None
        assert key_id_of(load_validator_key(config)) == config.address
        assert load_home_genesis(config) == genesis
        assert config.store_path == tmp_path / "validators" / f"v{i}" / "blocks.sqlite"
    assert ports == set(range(30000, 30005))
    with pytest.raises(GenesisError, match="already exists"):
        init_data_dir(tmp_path, validators=5, chain_id="c1", genesis_time=1)


def test_refused_genesis_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(GenesisError):
        init_data_dir(tmp_path / "d", validators=3, chain_id="c", genesis_time=1)
    assert not (tmp_path / "d").exists()


def test_bad_config_names_file_and_key(tmp_path: Path) -> None:
    init_data_dir(tmp_path, validators=4, chain_id="c", genesis_time=1)
    home = tmp_path / "validators" / "v0"
    data = yaml.safe_load((home / "config.yaml").read_text())
    data["listen"]["port"] = "eighty"
    (home / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(HomeError, match=r"config\.yaml: key 'port': expected int"):
        load_home(home)
    (home / "config.yaml").write_text("a: [")
    with pytest.raises(LedgerError, match="not YAML"):
        load_home(home)


def _set_links(home: Path, links: object) -> None:
    data = yaml.safe_load((home / "config.yaml").read_text())
    data["links"] = links
    (home / "config.yaml").write_text(yaml.safe_dump(data))


def test_connection_caps_come_from_links_and_default_when_absent(tmp_path: Path) -> None:
    init_data_dir(tmp_path, validators=4, chain_id="c", genesis_time=1)
    home = tmp_path / "validators" / "v0"
    assert load_home(home).caps == ConnectionCaps()
    assert ConnectionCaps().per_address == 64 and ConnectionCaps().total == 2048
    _set_links(home, {"per_address": 5, "opening_per_address": 2, "clients": 3, "total": 9})
    caps = load_home(home).caps
    assert (caps.per_address, caps.opening_per_address, caps.clients, caps.total) == (5, 2, 3, 9)
    assert caps.opening == 1024 and caps.submitters == 64  # the others keep their defaults


@pytest.mark.parametrize(
    ("links", "message"),
    [
        (
            {"per_address": 0},
            r"key 'links\.per_address': expected an integer from 1 to 1000000, got 0",
        ),
        (
            {"clients": "many"},
            r"key 'links\.clients': expected an integer from 1 to 1000000, got 'many'",
        ),
        ({"total": True}, r"key 'links\.total': expected an integer from 1 to 1000000, got True"),
        ({"opening": 10**7}, r"key 'links\.opening': expected an integer from 1 to 1000000"),
        (
            {"per_adress": 3},
            r"key 'links\.per_adress': unknown cap \(expected one of per_address, ",
        ),
        ([64], r"key 'links': expected a mapping of caps, got \[64\]"),
    ],
)
def test_a_bad_connection_cap_names_file_key_and_what_was_expected(
    tmp_path: Path, links: object, message: str
) -> None:
    init_data_dir(tmp_path, validators=4, chain_id="c", genesis_time=1)
    home = tmp_path / "validators" / "v0"
    _set_links(home, links)
    with pytest.raises(HomeError, match=r"v0/config\.yaml: " + message):
        load_home(home)
