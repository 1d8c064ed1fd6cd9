"""The on-disk layout of a ledger: a data dir with a genesis, keys and validator homes.

::

    DIR/genesis.json
    DIR/keys/aggregator.key, DIR/keys/csms.key      (0600; authorised in genesis)
    DIR/validators/v0 .. v{N-1}/
        validator.key   (0600)
        config.yaml     (its loopback listen address, its peers, its store and genesis;
                         optionally ``links``: its connection caps, ``ConnectionCaps``)
        blocks.sqlite   (its block store)

``init_data_dir`` writes it; ``load_home`` reads one validator home's config into a
frozen dataclass, naming the file and key when something is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ledger.consensus.limits import CAP_NAMES, ConnectionCaps
from ledger.errors import GenesisError, HomeError
from ledger.genesis import Genesis, genesis_json, load_genesis
from ledger.keys import (
    SigningKey,
    generate_key,
    key_id_of,
    public_bytes,
    read_key_file,
    write_key_file,
)
from ledger.types import Validator, ValidatorSet

GENESIS_FILE = "genesis.json"
CONFIG_FILE = "config.yaml"
KEY_FILE = "validator.key"
STORE_FILE = "blocks.sqlite"
DEFAULT_POWER = 10
MAX_CAP = 1_000_000  # the most any connection cap may be set to (each is held in memory)
DEFAULT_BASE_PORT = 26650


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    address: str
    url: str


@dataclass(frozen=True, slots=True)
class HomeConfig:
    """One validator's configuration, with paths resolved against its home."""

    home: Path
    name: str
    chain_id: str
    address: str
    listen_host: str
    listen_port: int
    peers: tuple[Peer, ...]
    store_path: Path
    genesis_path: Path
    key_path: Path
    caps: ConnectionCaps = field(default_factory=ConnectionCaps)


def ledger_dir(data_dir: Path) -> Path:
    """The ledger data dir named by ``data_dir``: itself, or the ``ledger/`` of a CSMS data
    directory (which keeps its embedded validators there)."""
    if not (data_dir / "validators").is_dir() and (data_dir / "ledger" / "validators").is_dir():
        return data_dir / "ledger"
    return data_dir


def validator_homes(data_dir: Path) -> list[Path]:
    """The validator homes of a data dir (or of a CSMS data dir's ``ledger/``), v0 first."""
    data_dir = ledger_dir(data_dir)
    root = data_dir / "validators"
    if not root.is_dir():
        raise HomeError(f"{root}: no validators directory (run `v2g ledger init` first)")
    homes = [p for p in root.iterdir() if p.is_dir() and p.name[1:].isdigit()]
    return sorted(homes, key=lambda p: int(p.name[1:]))


def _config_dict(
    *, name: str, chain_id: str, address: str, port: int, peers: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "name": name,
        "chain_id": chain_id,
        "address": address,
        "listen": {"host": "127.0.0.1", "port": port},
        "peers": peers,
        "store": STORE_FILE,
        "genesis": f"../../{GENESIS_FILE}",
        "key": KEY_FILE,
    }


def init_data_dir(
    data_dir: Path,
    *,
    validators: int,
    chain_id: str,
    genesis_time: int,
    base_port: int = DEFAULT_BASE_PORT,
    pow_bits: int = 0,
) -> Genesis:
    """Create a data dir: keys, genesis, and one home per validator (stores left empty).

    A BFT genesis where a validator holds a third of the power or more (fewer than 4
    equal validators) is refused before anything is written.
    """
    if (data_dir / GENESIS_FILE).exists():
        raise GenesisError(f"{data_dir / GENESIS_FILE}: already exists; refusing to overwrite")
    if validators < 1:
        raise GenesisError(f"--validators must be at least 1, got {validators}")
    vkeys = [generate_key() for _ in range(validators)]
    csms, aggregator = generate_key(), generate_key()
    vset = ValidatorSet(
        tuple(Validator(key_id_of(k), public_bytes(k), DEFAULT_POWER) for k in vkeys)
    )
    genesis = Genesis(  # checks the power distribution before anything touches the disk
        urls={key_id_of(k): f"ws://127.0.0.1:{base_port + i}" for i, k in enumerate(vkeys)},
        chain_id=chain_id,
        genesis_time=genesis_time,
        validators=vset,
        csms_keys={key_id_of(csms): public_bytes(csms)},
        aggregator_key=public_bytes(aggregator),
        sealing="pow" if pow_bits else "bft",
        pow_bits=pow_bits,
    )
    keys_dir = data_dir / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    write_key_file(keys_dir / "aggregator.key", aggregator)
    write_key_file(keys_dir / "csms.key", csms)
    peers = [
        {"name": f"v{i}", "address": key_id_of(k), "url": f"ws://127.0.0.1:{base_port + i}"}
        for i, k in enumerate(vkeys)
    ]
    for i, key in enumerate(vkeys):
        home = data_dir / "validators" / f"v{i}"
        home.mkdir(parents=True, exist_ok=True)
        write_key_file(home / KEY_FILE, key)
        config = _config_dict(
            name=f"v{i}",
            chain_id=chain_id,
            address=key_id_of(key),
            port=base_port + i,
            peers=[p for p in peers if p["name"] != f"v{i}"],
        )
        (home / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (data_dir / GENESIS_FILE).write_text(genesis_json(genesis), encoding="utf-8")
    return genesis


def _get(data: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise HomeError(f"{path}: key {key!r}: expected {kind.__name__}, got {value!r}")
    return value


def load_home(home: Path) -> HomeConfig:
    """Read and check ``home/config.yaml``."""
    path = home / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HomeError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise HomeError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise HomeError(f"{path}: expected a mapping at the top level")
    listen = _get(data, "listen", dict, path)
    peers = []
    for i, p in enumerate(_get(data, "peers", list, path)):
        if not isinstance(p, dict) or not all(
            isinstance(p.get(k), str) for k in ("name", "address", "url")
        ):
            raise HomeError(f"{path}: key 'peers[{i}]': expected name, address and url strings")
        peers.append(Peer(p["name"], p["address"], p["url"]))
    return HomeConfig(
        home=home,
        name=_get(data, "name", str, path),
        chain_id=_get(data, "chain_id", str, path),
        address=_get(data, "address", str, path),
        listen_host=_get(listen, "host", str, path),
        listen_port=_get(listen, "port", int, path),
        peers=tuple(peers),
        store_path=home / _get(data, "store", str, path),
        genesis_path=(home / _get(data, "genesis", str, path)),
        key_path=home / _get(data, "key", str, path),
        caps=_caps(data.get("links"), path),
    )


def _caps(links: object, path: Path) -> ConnectionCaps:
    """The connection caps of the optional ``links`` mapping (absent keys: the defaults)."""
    if links is None:
        return ConnectionCaps()
    if not isinstance(links, dict):
        raise HomeError(f"{path}: key 'links': expected a mapping of caps, got {links!r}")
    unknown = sorted(str(k) for k in links if k not in CAP_NAMES)
    if unknown:
        raise HomeError(
            f"{path}: key 'links.{unknown[0]}': unknown cap (expected one of "
            f"{', '.join(CAP_NAMES)})"
        )
    for name, value in links.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAP:
            raise HomeError(
                f"{path}: key 'links.{name}': expected an integer from 1 to {MAX_CAP}, "
                f"got {value!r}"
            )
    return ConnectionCaps(**links)


def load_home_genesis(config: HomeConfig) -> Genesis:
    genesis = load_genesis(config.genesis_path)
    if genesis.chain_id != config.chain_id:
        raise HomeError(
            f"{config.home / CONFIG_FILE}: chain_id {config.chain_id} differs from the "
            f"genesis's {genesis.chain_id}"
        )
    return genesis


def load_validator_key(config: HomeConfig) -> SigningKey:
    key = read_key_file(config.key_path)
    if key_id_of(key) != config.address:
        raise HomeError(f"{config.key_path}: key id {key_id_of(key)} is not {config.address}")
    return key
