"""``v2g stations import`` and ``export`` through the real command line and a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from csms.app import start_csms
from csms.config import CsmsConfig
from csms.credentials import CREDENTIAL_KEY, is_pending, load_credential_key, password_mac
from csms.evidence import parse_public_key
from csms.passwords import verify_password
from csms.station_import import StationImportError, parse_station_csv
from csms.store.sqlite import DB_NAME, CsmsStore
from tests.csms.test_cli import v2g
from tests.csms.test_credentials import handshake

SPKI = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_pem() -> str:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI).decode()


def registry(data: Path) -> dict[str, tuple[str, str | None, str, int | None]]:
    async def read() -> dict[str, tuple[str, str | None, str, int | None]]:
        store = await CsmsStore.open_data_dir(data)
        try:
            return {
                s.station_id: (s.password_hash, s.meter_key, s.tolerance, s.security_profile)
                for s in await store.list_stations()
            }
        finally:
            await store.close()

    return asyncio.run(read())


def macs(data: Path) -> dict[str, str | None]:
    async def read() -> dict[str, str | None]:
        store = await CsmsStore.open_data_dir(data)
        try:
            return {s.station_id: s.password_mac for s in await store.list_stations()}
        finally:
            await store.close()

    return asyncio.run(read())


def test_import_registers_every_row_with_keys_tolerance_and_profile(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "m2.pem"
    key_file.parent.mkdir()
    key_file.write_text(public_pem())
    inline = public_pem()
    (tmp_path / "fleet.csv").write_text(
        "station_id,password,meter_key,tolerance,security_profile\n"
        "CS-1,first-pass-1,,,\n"
        f"CS-2,second-pass,keys/m2.pem,tolerant,2\n"
        f'CS-3,"third, with comma","{inline}",strict,default\n'
    )
    data = tmp_path / "data"
    fleet = str(tmp_path / "fleet.csv")
    done = v2g("stations", "import", fleet, "--data-dir", str(data), "--hash-now")
    assert done.returncode == 0, done.stderr
    assert "3 stations imported" in done.stdout and "hashed 3/3" in done.stderr
    stations = registry(data)
    assert sorted(stations) == ["CS-1", "CS-2", "CS-3"]
    assert verify_password("first-pass-1", stations["CS-1"][0])
    assert verify_password("third, with comma", stations["CS-3"][0])
    assert stations["CS-1"][1:] == (None, "strict", None)
    assert stations["CS-2"][2:] == ("tolerant", 2)
    key2 = stations["CS-2"][1]
    assert key2 is not None and parse_public_key(key2) == parse_public_key(key_file.read_text())
    key3 = stations["CS-3"][1]
    assert key3 is not None and parse_public_key(key3) == parse_public_key(inline)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("CS:9,a-good-password", "identifierString"),
        ("CS-2,short", "password: at least 8 characters"),
        ("CS-2,a-good-password,missing.pem", "missing.pem: cannot read meter key"),
        ("CS-2,a-good-password,,lenient", "tolerance must be strict or tolerant"),
        ("CS-2,a-good-password,,,4", "security_profile must be 1, 2, 3 or default"),
        ("CS-1,a-good-password", "station 'CS-1' is also on line 2"),
        ("CS-2,a-good-password,,,,extra", "6 fields, the header has 5"),
        ("CS-2,", "password is empty"),
    ],
)
def test_a_bad_row_stops_the_import_naming_its_line_and_nothing_is_written(
    tmp_path: Path, row: str, reason: str
) -> None:
    csv_file = tmp_path / "fleet.csv"
    good = "\n".join(f"CS-{n},a-good-password,,," for n in range(3, 40))
    csv_file.write_text(
        f"station_id,password,meter_key,tolerance,security_profile\nCS-1,a-good-password\n"
        f"{row}\n{good}\n"
    )
    data = tmp_path / "data"
    result = v2g("stations", "import", str(csv_file), "--data-dir", str(data))
    assert result.returncode == 1, result
    assert f"{csv_file}: line 3: " in result.stderr and reason in result.stderr
    assert "nothing was imported" in result.stderr and "Traceback" not in result.stderr
    assert not (data / DB_NAME).exists()  # not even an empty data dir


def test_an_id_already_registered_stops_the_import_and_keeps_the_registry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert (
        v2g(
            "stations", "add", "CS-2", "--password", "kept-pass-2", "--data-dir", str(data)
        ).returncode
        == 0
    )
    before = registry(data)
    csv_file = tmp_path / "fleet.csv"
    csv_file.write_text("station_id,password\nCS-1,a-good-password\nCS-2,a-new-password\n")
    result = v2g("stations", "import", str(csv_file), "--data-dir", str(data))
    assert (
        result.returncode == 1 and "line 3: station 'CS-2' is already registered" in result.stderr
    )
    assert registry(data) == before


def test_header_problems_name_line_1(tmp_path: Path) -> None:
    for text, reason in [
        ("", "empty file"),
        ("station_id,passwd\nCS-1,abcdefghi\n", "unknown column 'passwd'"),
        ("station_id,meter_key\nCS-1,\n", "missing column 'password'"),
        ("station_id,password\n", "no stations in the file"),
    ]:
        with pytest.raises(StationImportError) as raised:
            parse_station_csv(text, source="f.csv", base_dir=tmp_path)
        assert raised.value.args[0].startswith("f.csv: line ") and reason in str(raised.value)


def test_a_quoted_multiline_key_counts_its_lines(tmp_path: Path) -> None:
    text = f'station_id,password,meter_key\nCS-1,pass-word-1,"{public_pem()}"\nCS-2,short\n'
    with pytest.raises(StationImportError, match="line 7: password"):
        parse_station_csv(text, source="f.csv", base_dir=tmp_path)


def test_export_round_trips_through_import_once_passwords_are_filled_in(tmp_path: Path) -> None:
    key = public_pem()
    (tmp_path / "fleet.csv").write_text(
        "station_id,password,meter_key,tolerance,security_profile\n"
        f'CS-A,pass-word-a,"{key}",tolerant,3\nCS-B,pass-word-b,,,1\nCS-C,pass-word-c,,,\n'
    )
    first, second = tmp_path / "d1", tmp_path / "d2"
    assert (
        v2g("stations", "import", str(tmp_path / "fleet.csv"), "--data-dir", str(first)).returncode
        == 0
    )
    exported = v2g("stations", "export", "--data-dir", str(first))
    assert exported.returncode == 0, exported.stderr
    assert "pass-word" not in exported.stdout  # no passwords, no hashes
    assert "scrypt" not in exported.stdout
    plain = tmp_path / "export.csv"
    plain.write_text(exported.stdout)
    refused = v2g("stations", "import", str(plain), "--data-dir", str(second))
    assert refused.returncode == 1 and "line 2: password is empty" in refused.stderr
    filled = exported.stdout.replace("CS-A,,", "CS-A,new-pass-a,").replace(
        "CS-B,,", "CS-B,new-pass-b,"
    )
    filled = filled.replace("CS-C,,", "CS-C,new-pass-c,")
    (tmp_path / "filled.csv").write_text(filled)
    again = v2g("stations", "import", str(tmp_path / "filled.csv"), "--data-dir", str(second))
    assert again.returncode == 0, again.stderr
    out = tmp_path / "again.csv"
    assert (
        v2g("stations", "export", "--output", str(out), "--data-dir", str(second)).returncode == 0
    )
    assert out.read_text() == exported.stdout
    one, two = registry(first), registry(second)
    assert {k: v[1:] for k, v in one.items()} == {k: v[1:] for k, v in two.items()}
    assert is_pending(two["CS-A"][0])  # hashed by the CSMS after its first connection
    assert macs(second)["CS-A"] == password_mac(
        load_credential_key(second), "CS-A", two["CS-A"][0], "new-pass-a"
    )


def test_imported_and_added_stations_connect_the_first_time_without_a_scrypt(
    tmp_path: Path,
) -> None:
    (tmp_path / "fleet.csv").write_text("station_id,password\nCS-1,first-pass-1\n")
    data = tmp_path / "data"
    assert (
        v2g("stations", "import", str(tmp_path / "fleet.csv"), "--data-dir", str(data)).returncode
        == 0
    )
    added = v2g("stations", "add", "CS-2", "--password", "second-pass", "--data-dir", str(data))
    assert added.returncode == 0, added.stderr
    assert (data / CREDENTIAL_KEY).stat().st_mode & 0o077 == 0

    async def connect_both() -> tuple[bool, bool, int]:
        app = await start_csms(data, CsmsConfig(port=0, close_timeout=0.3))
        try:
            first = await handshake(app, "CS-1", "first-pass-1")
            second = await handshake(app, "CS-2", "second-pass")
            return first, second, app.server.credentials.hashes
        finally:
            await app.stop()

    assert asyncio.run(connect_both()) == (True, True, 0)
    changed = v2g("stations", "set", "CS-2", "--password", "another-pass", "--data-dir", str(data))
    assert changed.returncode == 0, changed.stderr

    async def connect_again() -> tuple[bool, bool, int]:
        app = await start_csms(data, CsmsConfig(port=0, close_timeout=0.3))
        try:
            old = await handshake(app, "CS-2", "second-pass")
            new = await handshake(app, "CS-2", "another-pass")
            return old, new, app.server.credentials.hashes
        finally:
            await app.stop()

    assert asyncio.run(connect_again()) == (False, True, 1)  # only the wrong one hashed
