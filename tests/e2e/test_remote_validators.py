"""A CSMS given only a genesis file reaches validators that run elsewhere: genesis carries
each validator's url (outside the genesis hash), or csms.yaml lists them under ``validators:``.
The validator homes live in unrelated directories, each with its own copy of the genesis."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from csms.app import external_validator_urls, start_csms
from csms.config import CsmsConfig, load_config
from csms.errors import ConfigError
from ledger.genesis import genesis_hash, load_genesis
from ledger.keys import read_key_file
from ledger.tx import sign_tx
from tests.e2e.test_csms_crash import free_block, wait_for_port
from tests.ledger.builders import settlement_body

PY = sys.executable


@pytest.fixture
def validators(tmp_path: Path) -> Iterator[tuple[Path, list[Path], int]]:
    """A ledger made by ``v2g ledger init``, its homes moved to unrelated directories and
    started there as processes; yields (genesis file alone in a directory, homes, base port)."""
    made = tmp_path / "made"
    base = free_block(4)
    subprocess.run(
        [PY, "-m", "v2g", "ledger", "init", "--data-dir", str(made), "--validators", "4",
         "--base-port", str(base), "--chain-id", "remote-chain"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    homes = []
    for n in range(4):
        home = tmp_path / f"host-{n}" / "srv" / "validator"
        home.parent.mkdir(parents=True)
        shutil.move(made / "validators" / f"v{n}", home)
        shutil.copy(made / "genesis.json", home / "genesis.json")
        config = yaml.safe_load((home / "config.yaml").read_text())
        config["genesis"] = "genesis.json"
        (home / "config.yaml").write_text(yaml.safe_dump(config))
        homes.append(home)
    alone = tmp_path / "csms-host" / "genesis.json"
    alone.parent.mkdir()
    shutil.copy(made / "genesis.json", alone)
    key = tmp_path / "csms-host" / "csms.key"
    shutil.copy(made / "keys" / "csms.key", key)
    shutil.rmtree(made / "validators")
    procs = [
        subprocess.Popen(
            [PY, "-m", "v2g", "validator", "--home", str(home), "--block-interval-ms", "100"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for home in homes
    ]
    try:
        yield alone, homes, base
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_a_csms_with_only_the_genesis_file_settles_to_validators_elsewhere(
    tmp_path: Path, validators: tuple[Path, list[Path], int]
) -> None:
    genesis_path, _, base = validators
    genesis = load_genesis(genesis_path)
    assert sorted(genesis.urls.values()) == [f"ws://127.0.0.1:{base + n}" for n in range(4)]
    for n in range(4):
        await wait_for_port(base + n)
    data = tmp_path / "csms-data"
    config = CsmsConfig(
        port=0,
        http_port=0,
        genesis=str(genesis_path),
        csms_key=str(genesis_path.parent / "csms.key"),
    )
    app = await start_csms(data, config, ledger="external")
    try:
        assert app.outbox is not None
        key = read_key_file(genesis_path.parent / "csms.key")
        body = settlement_body("remote-1")
        tx = sign_tx(body, key, genesis.chain_id)
        receipt = await asyncio.wait_for(app.outbox.client.submit(tx.data), 30)
        assert receipt.height >= 1
    finally:
        await app.stop()


def test_urls_are_outside_the_genesis_hash_and_the_config_list_wins(tmp_path: Path) -> None:
    subprocess.run(
        [PY, "-m", "v2g", "ledger", "init", "--data-dir", str(tmp_path / "l"), "--validators",
         "4", "--base-port", "41000"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    path = tmp_path / "l" / "genesis.json"
    genesis = load_genesis(path)
    bare = tmp_path / "bare.json"
    text = path.read_text()
    for url in genesis.urls.values():
        text = text.replace(f'"url": "{url}",', "").replace(f',\n      "url": "{url}"', "")
    bare.write_text(text)
    assert load_genesis(bare).urls == {}
    assert genesis_hash(load_genesis(bare)) == genesis_hash(genesis)
    yaml_path = tmp_path / "csms.yaml"
    yaml_path.write_text("validators: [ws://10.0.0.5:26656, wss://v.example:443]\n")
    config = load_config(yaml_path)
    urls = external_validator_urls(config, genesis, path)
    assert urls == ["ws://10.0.0.5:26656", "wss://v.example:443"]
    assert sorted(external_validator_urls(CsmsConfig(), genesis, path)) == sorted(
        genesis.urls.values()
    )
    yaml_path.write_text("validators: [10.0.0.5]\n")
    with pytest.raises(ConfigError, match=r"'validators'.*ws://HOST:PORT"):
        load_config(yaml_path)


@pytest.mark.parametrize(
    ("content", "says"),
    [("this is not json {", "not valid JSON"), ('{"hello": "world"}', "not a genesis")],
)
def test_a_garbage_genesis_says_what_it_is_not(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(content)
    result = subprocess.run(
        [PY, "-m", "v2g", "csms", "--data-dir", str(tmp_path / "d"), "--genesis", str(path),
         "--port", "0", "--http-port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert says in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr
