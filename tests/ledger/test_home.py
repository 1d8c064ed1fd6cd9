from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
