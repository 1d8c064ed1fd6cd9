from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ledger.errors import KeyFileError
from ledger.keys import generate_key, key_id_of, read_key_file, write_key_file


def test_key_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "k.key"
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id_of(read_key_file(path)) == key_id_of(key)


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_key_file(path, generate_key())
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, generate_key())


def test_bad_key_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    with pytest.raises(KeyFileError, match=r"missing\.key"):
        read_key_file(missing)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    with pytest.raises(KeyFileError, match=r"garbage\.key: not a PEM"):
        read_key_file(garbage)
