"""Registering meter keys through the real command line: only a P-256 public key passes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from csms.evidence import PUBLIC_KEY_PREFIX, parse_public_key
from csms.store.sqlite import CsmsStore
from tests.csms.test_cli import v2g

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = KEY.public_key()
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def stored_key(data: Path, station_id: str) -> str | None:
    async def read() -> str | None:
        store = await CsmsStore.open_data_dir(data)
        try:
            station = await store.get_station(station_id)
            return None if station is None else station.meter_key
        finally:
            await store.close()

    return asyncio.run(read())


def add(data: Path, station_id: str, key_file: Path) -> tuple[int, str]:
    result = v2g("stations", "add", station_id, "--password", "s3cret-pass", "--meter-key",
                 str(key_file), "--data-dir", str(data))  # fmt: skip
    assert "Traceback" not in result.stderr and not re.search(r"\w+Error\b", result.stderr)
    return result.returncode, result.stderr


def test_public_keys_in_pem_der_and_oca_are_registered(tmp_path: Path) -> None:
    pem = tmp_path / "m.pem"
    pem.write_bytes(PUBLIC.public_bytes(serialization.Encoding.PEM, SPKI[1]))
    der = tmp_path / "m.der"
    der.write_bytes(PUBLIC.public_bytes(*SPKI))
    oca = tmp_path / "m.oca"
    oca.write_text(PUBLIC_KEY_PREFIX + PUBLIC.public_bytes(*SPKI).hex().upper())
    for n, path in enumerate((pem, der, oca)):
        code, err = add(tmp_path / "data", f"CS{n}", path)
        assert code == 0, err
        stored = stored_key(tmp_path / "data", f"CS{n}")
        assert stored is not None and parse_public_key(stored) == PUBLIC


def test_private_keys_garbage_and_binary_files_are_refused(tmp_path: Path) -> None:
    private = tmp_path / "meter.key"
    private.write_bytes(
        KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    code, err = add(tmp_path / "data", "CS1", private)
    assert code == 1 and "private key" in err and "public key only" in err
    assert stored_key(tmp_path / "data", "CS1") is None  # nothing registered, nothing stored
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, err = add(tmp_path / "data", "CS2", garbage)
    assert code == 1 and str(garbage) in err and "P-256 public key" in err
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    code, err = add(tmp_path / "data", "CS3", binary)
    assert code == 1 and "UnicodeDecodeError" not in err and "P-256 public key" in err
    other_curve = tmp_path / "p384.pem"
    other_curve.write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, SPKI[1])
    )
    code, err = add(tmp_path / "data", "CS4", other_curve)
    assert code == 1 and "P-256" in err


def test_stations_set_replaces_the_meter_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = tmp_path / "first.pem"
    first.write_bytes(PUBLIC.public_bytes(serialization.Encoding.PEM, SPKI[1]))
    assert add(data, "CS1", first)[0] == 0
    new_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    second = tmp_path / "second.pem"
    second.write_bytes(new_key.public_bytes(serialization.Encoding.PEM, SPKI[1]))
    result = v2g("stations", "set", "CS1", "--meter-key", str(second), "--data-dir", str(data))
    assert result.returncode == 0 and "meter key replaced" in result.stdout, result.stderr
    stored = stored_key(data, "CS1")
    assert stored is not None and parse_public_key(stored) == new_key
    unknown = v2g("stations", "set", "CS9", "--meter-key", str(second), "--data-dir", str(data))
    assert unknown.returncode == 1 and "not registered" in unknown.stderr
