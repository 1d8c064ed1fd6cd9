"""Every list command prints an aligned table with a header, units and UTC times."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from csms.cli import stations_group, tokens_group
from csms.cli_review import operators_group
from csms.store.sqlite import CsmsStore
from tests.table_checks import assert_aligned

LONG_ID = "CS-WAREHOUSE-NORTH-0000000001"  # longer than any fixed column would be


def invoke(group: object, *args: str) -> str:
    result = CliRunner().invoke(group, list(args), catch_exceptions=False)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result.output


def test_stations_list_is_aligned_whatever_the_lengths(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path))
    invoke(stations_group, "add", LONG_ID, "--password", "s3cret-pass", *data)
    invoke(stations_group, "add", "CS1", "--password", "s3cret-pass", "--tolerance", "tolerant",
           "--security-profile", "2", *data)  # fmt: skip

    async def boot() -> None:
        store = await CsmsStore.open_data_dir(tmp_path)
        try:
            await store.record_boot(
                "CS1",
                vendor="Very Long Vendor Name GmbH",
                model="Wallbox Pro Bidirectional 22",
                serial_number=None,
                firmware=None,
                at="2026-11-25T16:30:00.123Z",
            )
        finally:
            await store.close()

    asyncio.run(boot())
    rows = assert_aligned(invoke(stations_group, "list", *data))
    header = ["STATION", "MODEL", "METER KEY", "TOLERANCE", "PROFILE", "PASSWORD"]
    assert rows[0] == [*header, "LAST SEEN (UTC)"]
    assert rows[2] == [
        "CS1",
        "Very Long Vendor Name GmbH Wallbox Pro Bidirectional 22",
        "no",
        "tolerant",
        "2",
        "hashed",
        "2026-11-25 16:30:00",
    ]
    assert rows[1] == [LONG_ID, "-", "no", "strict", "csms", "hashed", "never"]


def test_tokens_list_shows_expiry_in_utc(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path))
    invoke(tokens_group, "add", "04E1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7", "--payment", "ledger",
           "--expires", "2027-01-01T01:00:00+01:00", *data)  # fmt: skip
    invoke(tokens_group, "add", "AB12", "--type", "KeyCode", *data)
    rows = assert_aligned(invoke(tokens_group, "list", *data))
    assert rows[0] == ["TOKEN", "TYPE", "STATUS", "PAYMENT", "EXPIRES (UTC)", "ADDED (UTC)"]
    by_token = {row[0]: row for row in rows[1:]}
    long = by_token["04E1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7"]
    assert long[1:5] == ["ISO14443", "Accepted", "ledger", "2027-01-01 00:00:00"]
    assert by_token["AB12"][1:5] == ["KeyCode", "Accepted", "invoice", "never"]
    assert all("T" not in row[5] and len(row[5]) == 19 for row in rows[1:])


def test_operators_list_is_aligned_with_a_header(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path))
    invoke(operators_group, "add", "a-very-long-operator-name", "--password", "pw-pw-pw-pw",
           "--role", "auditor", *data)  # fmt: skip
    invoke(operators_group, "add", "bo", "--password", "pw-pw-pw-pw", *data)
    rows = assert_aligned(invoke(operators_group, "list", *data))
    assert rows[0] == ["NAME", "ROLE", "ADDED (UTC)"]
    assert [row[:2] for row in rows[1:]] == [
        ["a-very-long-operator-name", "auditor"],
        ["bo", "operator"],
    ]
