"""The ledger commands, run as a user runs them: ``python -m v2g ...`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.canonical import encode
from ledger.codec import commit_bytes, header_bytes
from ledger.home import load_home, load_home_genesis, load_validator_key, validator_homes
from ledger.sealing import seal_block
from ledger.sqlite_store import SqliteBlockStore
from ledger.state import genesis_state
from tests.table_checks import assert_aligned

REPO = Path(__file__).resolve().parents[2]


def v2g(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-validator data dir with 3 sealed blocks of 3 settlements each."""
    data = tmp_path_factory.mktemp("ledger") / "data"
    init = v2g("ledger", "init", "--data-dir", data, "--validators", "4", "--chain-id", "cli-test")
    assert init.returncode == 0, init.stderr
    seal = v2g("ledger", "seal-demo", "--data-dir", data, "--blocks", "3", "--per-block", "3")
    assert seal.returncode == 0, seal.stderr
    return data


@pytest.fixture
def data_dir(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(pristine, copy)
    return copy


def test_init_layout(pristine: Path) -> None:
    genesis = json.loads((pristine / "genesis.json").read_text())
    assert genesis["chain_id"] == "cli-test"
    assert len(genesis["validators"]) == 4
    assert len(genesis["csms_keys"]) == 1
    for i in range(4):
        home = pristine / "validators" / f"v{i}"
        assert stat.S_IMODE((home / "validator.key").stat().st_mode) == 0o600
        assert (home / "blocks.sqlite").is_file()
        assert "127.0.0.1" in (home / "config.yaml").read_text()
    for name in ("aggregator.key", "csms.key"):
        assert stat.S_IMODE((pristine / "keys" / name).stat().st_mode) == 0o600


@pytest.mark.parametrize("n", [1, 2, 3])
def test_init_refuses_fewer_than_four_equal_validators(tmp_path: Path, n: int) -> None:
    result = v2g("ledger", "init", "--data-dir", tmp_path / "d", "--validators", str(n))
    assert result.returncode != 0
    assert "a third or more" in result.stderr
    assert "at least 4 validators" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d" / "genesis.json").exists()


def test_verify_status_show_on_a_good_chain(pristine: Path) -> None:
    result = v2g("ledger", "verify", "--data-dir", pristine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok, height 3, 9 transactions") == 4
    status = v2g("ledger", "status", "--home", pristine / "validators" / "v2", "--format", "json")
    assert json.loads(status.stdout)["height"] == 3
    show = v2g("ledger", "show", "2", "--data-dir", pristine)
    block = json.loads(show.stdout)
    assert block["header"]["height"] == 2
    assert len(block["txs"]) == 3
    assert block["commit"]["block_id"] == block["block_id"]


def test_status_is_a_table_with_utc_times_not_epoch_ms(pristine: Path) -> None:
    status = v2g("ledger", "status", "--data-dir", pristine)
    assert status.returncode == 0, status.stderr
    rows = assert_aligned(status.stdout)
    assert rows[0] == ["VALIDATOR", "CHAIN", "HEIGHT", "LAST BLOCK (UTC)", "BLOCK ID"]
    assert [row[:3] for row in rows[1:]] == [[f"v{i}", "cli-test", "3"] for i in range(4)]
    for row in rows[1:]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[3]), row
        assert re.fullmatch(r"[0-9a-f]{64}", row[4]), row
    assert not re.search(r"\b\d{13}\b", status.stdout)  # no epoch milliseconds
    as_json = json.loads(v2g("ledger", "status", "--home", pristine / "validators" / "v0",
                             "--format", "json").stdout)  # fmt: skip
    assert as_json["time_utc"].replace("T", " ").startswith(rows[1][3])
    assert as_json["time_utc"].endswith("Z") and isinstance(as_json["time"], int)


def test_verify_receipt_states_the_amount_in_currency_units_and_who_pays(
    pristine: Path, tmp_path: Path
) -> None:
    proof = v2g("ledger", "proof", "demo-4", "--data-dir", pristine)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(proof.stdout)
    record = json.loads(proof.stdout)["settlement"]
    ok = v2g("ledger", "verify-receipt", receipt, "--genesis", pristine / "genesis.json")
    assert ok.returncode == 0, ok.stderr
    micro = json.loads(record["data"])["amount"] if "data" in record else record["amount"]
    units = f"{Decimal(micro).scaleb(-6):.6f} EUR"
    payer = "paid by the driver" if micro > 0 else "paid to the driver"
    assert f"amount {units} ({payer})" in ok.stdout, ok.stdout
    assert f"amount {micro} " not in ok.stdout  # no bare micro-units
    assert re.search(r"kWh imported", ok.stdout) and re.search(r"kWh exported", ok.stdout)
    assert re.search(r"committed at height 2 .* at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", ok.stdout)


# Where to change a value but keep the record well-formed: a digit inside a field.
VALUE_FIELD = {
    "transaction": b'"amount":',
    "header": b'"prev_hash":"',
    "certificate": b'"signature":"',
}


def _flip(path: Path, needle: bytes, offset: int, *, keep_form: bool = False) -> None:
    """Change one byte of the only occurrence of ``needle`` in the file.

    By default XOR it with 1; with ``keep_form`` swap a digit for another digit, so the
    stored record still parses and only its value is wrong.
    """
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "data must be in the main file"
    raw = bytearray(path.read_bytes())
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) == -1
    if keep_form:
        assert chr(raw[at + offset]) in "0123456789abcdef"
        raw[at + offset] = ord("1") if raw[at + offset] == ord("0") else ord("0")
    else:
        raw[at + offset] ^= 0x01
    path.write_bytes(bytes(raw))


def _stored(path: Path, height: int) -> tuple[bytes, bytes, bytes]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        header, cert = conn.execute(
            "SELECT header, commit_cert FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        tx = conn.execute("SELECT data FROM txs WHERE height = ? AND idx = 1", (height,)).fetchone()
    return bytes(header), bytes(tx[0]), bytes(cert)


@pytest.mark.parametrize("kind", ["transaction", "header", "certificate"])
@pytest.mark.parametrize("where", ["first", "middle", "last", "value"])
def test_flipped_byte_fails_verify_at_its_height(data_dir: Path, kind: str, where: str) -> None:
    store = data_dir / "validators" / "v1" / "blocks.sqlite"
    header, tx, cert = _stored(store, 2)
    # what is stored is exactly the canonical bytes that were hashed and signed
    assert encode(json.loads(header)) == header and encode(json.loads(cert)) == cert
    needle = {"transaction": tx, "header": header, "certificate": cert}[kind]
    if where == "value":
        offset = needle.index(VALUE_FIELD[kind]) + len(VALUE_FIELD[kind]) + 1
    else:
        offset = {"first": 0, "middle": len(needle) // 2, "last": len(needle) - 1}[where]
    _flip(store, needle, offset, keep_form=where == "value")
    result = v2g("ledger", "verify", "--data-dir", data_dir)
    assert result.returncode != 0
    assert "v1: FAILED at height 2" in result.stderr
    assert result.stdout.count("ok, height 3") == 3  # the other stores are intact
    assert "Traceback" not in result.stderr
    home = v2g("ledger", "verify", "--home", data_dir / "validators" / "v1")
    assert home.returncode != 0 and "at height 2" in home.stderr


def test_receipt_verifies_offline_and_amount_plus_one_fails(data_dir: Path, tmp_path: Path) -> None:
    proof = v2g("ledger", "proof", "demo-4", "--data-dir", data_dir)
    assert proof.returncode == 0, proof.stderr
    receipt = json.loads(proof.stdout)
    assert receipt["settlement"]["settlement_id"] == "demo-4"
    assert receipt["header"]["height"] == 2
    good = tmp_path / "good.json"
    good.write_text(proof.stdout)
    genesis = data_dir / "genesis.json"
    ok = v2g("ledger", "verify-receipt", good, "--genesis", genesis)
    assert ok.returncode == 0, ok.stderr
    assert "receipt OK" in ok.stdout
    receipt["settlement"]["amount"] += 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(receipt))
    result = v2g("ledger", "verify-receipt", bad, "--genesis", genesis)
    assert result.returncode != 0
    assert "receipt INVALID" in result.stderr
    assert "Traceback" not in result.stderr


def test_receipt_against_another_genesis_fails(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert (
        v2g(
            "ledger", "init", "--data-dir", other, "--validators", "4", "--chain-id", "cli-test"
        ).returncode
        == 0
    )
    receipt = tmp_path / "r.json"
    receipt.write_text(v2g("ledger", "proof", "demo-0", "--data-dir", data_dir).stdout)
    result = v2g("ledger", "verify-receipt", receipt, "--genesis", other / "genesis.json")
    assert result.returncode != 0 and "receipt INVALID" in result.stderr


def test_pow_demo_paper_vector() -> None:
    result = v2g(
        "ledger", "pow-demo", "--data", "blockchain", "--zeros", "6", "--start", "10730000"
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["nonce"] == "10730895"
    assert lines["hash"].startswith("000000")


def test_bad_files_give_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    for args in (
        ("ledger", "verify-receipt", garbage, "--genesis", garbage),
        ("ledger", "verify", "--home", tmp_path / "nohome"),
        ("ledger", "status", "--home", tmp_path / "nohome"),
        ("keys", "generate", tmp_path / "no" / "such" / "dir" / "k.key"),
    ):
        result = v2g(*args)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert str(tmp_path) in result.stderr


def test_usage_errors() -> None:
    both = v2g("ledger", "verify")
    assert both.returncode == 2 and "exactly one of --data-dir" in both.stderr
    missing = v2g("ledger", "pow-demo", "--zeros", "2")
    assert missing.returncode == 2 and "Usage:" in missing.stderr


def test_keys_generate_prints_key_id(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    result = v2g("keys", "generate", path)
    assert result.returncode == 0
    key_id = result.stdout.strip()
    assert len(key_id) == 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"key_id={key_id}" in v2g("keys", "show", path).stdout


def test_stored_bytes_match_codec(pristine: Path) -> None:
    from ledger.codec import commit_from_dict, header_from_dict

    header, _, cert = _stored(pristine / "validators" / "v0" / "blocks.sqlite", 1)
    assert header_bytes(header_from_dict(json.loads(header))) == header
    assert commit_bytes(commit_from_dict(json.loads(cert))) == cert


async def _fork_v3(data_dir: Path) -> None:
    """Replace v3's store with a valid chain of other blocks from the same genesis."""
    homes = [load_home(h) for h in validator_homes(data_dir)]
    genesis = load_home_genesis(homes[0])
    keys = [load_validator_key(c) for c in homes]
    path = homes[3].store_path
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = await SqliteBlockStore.open(path)
    state, last = genesis_state(genesis), None
    for _ in range(2):
        sealed = seal_block(state, [], keys, time=state.time + 7, last_commit=last)
        await store.append(sealed.block, sealed.commit)
        state, last = sealed.state, sealed.commit
    await store.close()


def test_verify_reports_diverging_stores(data_dir: Path) -> None:
    asyncio.run(_fork_v3(data_dir))
    result = v2g("ledger", "verify", "--data-dir", data_dir)
    assert result.returncode != 0
    assert "v3: ok, height 2, 0 transactions" in result.stdout
    assert "v3: DIVERGES from v0 at height 1" in result.stderr


def test_pow_chain_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "pow"
    init = v2g("ledger", "init", "--data-dir", data, "--validators", "1", "--pow-bits", "8")
    assert init.returncode == 0, init.stderr
    assert json.loads((data / "genesis.json").read_text())["sealing"] == "pow"
    assert v2g("ledger", "seal-demo", "--data-dir", data, "--blocks", "2").returncode == 0
    verify = v2g("ledger", "verify", "--data-dir", data)
    assert verify.returncode == 0 and "ok, height 2" in verify.stdout
    block = json.loads(v2g("ledger", "show", "1", "--data-dir", data).stdout)
    assert block["commit"] is None
    assert int(block["block_id"][:2], 16) == 0  # 8 leading zero bits
    receipt = tmp_path / "r.json"
    receipt.write_text(v2g("ledger", "proof", "demo-1", "--data-dir", data).stdout)
    ok = v2g("ledger", "verify-receipt", receipt, "--genesis", data / "genesis.json")
    assert ok.returncode == 0, ok.stderr
