"""The commands on a PostgreSQL database: --database URL, or 'database:' in DATA_DIR/csms.yaml."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg
from websockets.asyncio.client import connect

from csms.config import load_config
from csms.errors import ConfigError
from tests.csms.builders import transaction_event
from tests.csms.conftest import BOOT, RawClient, auth_header
from tests.postgres import PostgresServer


def v2g(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *args], capture_output=True, text=True, timeout=60
    )


def count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_registry_commands_use_the_postgresql_database(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    data = tmp_path / "data"
    at = ("--data-dir", str(data), "--database", url)
    added = v2g("stations", "add", "CS-1", "--password", "s3cret-pass", *at)
    assert added.returncode == 0, added.stderr
    again = v2g("stations", "add", "CS-1", "--password", "s3cret-pass", *at)
    assert again.returncode == 1 and "already registered" in again.stderr
    assert v2g("tokens", "add", "04A2B3C4", "--payment", "ledger", *at).returncode == 0
    assert v2g("operators", "add", "alice", "--password", "long enough", *at).returncode == 0
    assert not (data / "csms.sqlite").exists()  # nothing went to a SQLite file
    assert count(url, "SELECT COUNT(*) FROM stations") == 1
    assert count(url, "SELECT COUNT(*) FROM id_tokens") == 1
    assert count(url, "SELECT COUNT(*) FROM operators") == 1
    # The data directory's csms.yaml names the database for every command.
    (data / "csms.yaml").write_text(f"database: {url}\n")
    listed = v2g("stations", "list", "--data-dir", str(data))
    assert listed.returncode == 0 and "CS-1" in listed.stdout, listed.stderr
    assert "04A2B3C4" in v2g("tokens", "list", "--data-dir", str(data)).stdout
    assert "alice" in v2g("operators", "list", "--data-dir", str(data)).stdout
    assert v2g("sessions", "list", "--data-dir", str(data)).returncode == 0
    postgres.drop_database(url)


def test_a_bad_or_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    data = str(tmp_path)
    bad = v2g("stations", "list", "--data-dir", data, "--database", "mysql://x/y")
    assert bad.returncode == 2 and "Usage:" in bad.stderr
    assert "postgresql://USER@HOST/DATABASE" in bad.stderr
    gone = f"postgresql://nobody@/nothing?host={tmp_path}/no-such-socket-dir"
    result = v2g("stations", "list", "--data-dir", data, "--database", gone)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot open the PostgreSQL database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_database_must_be_a_postgresql_url(tmp_path: Path) -> None:
    config = tmp_path / "csms.yaml"
    config.write_text("database: /var/lib/csms.sqlite\n")
    try:
        load_config(config)
    except ConfigError as exc:
        assert str(config) in str(exc) and "'database'" in str(exc)
        assert "postgresql://" in str(exc)
    else:
        raise AssertionError("a file path was taken as a database URL")
    config.write_text("database: postgresql://csms@db.example/csms\n")
    assert load_config(config).database == "postgresql://csms@db.example/csms"


def test_csms_process_stores_events_once_in_postgresql(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    data = tmp_path / "data"
    at = ("--data-dir", str(data), "--database", url)
    assert v2g("stations", "add", "CS-PG", "--password", "s3cret-pass", *at).returncode == 0
    # This raw client reads answers strictly in order: no report request after boot.
    data.joinpath("csms.yaml").write_text("evse_discovery: false\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "v2g", "csms", *at, "--port", "0", "--http-port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "CSMS listening on ws://127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])

        async def station() -> list[object]:
            ws = await connect(
                f"ws://127.0.0.1:{port}/ocpp/CS-PG",
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                additional_headers=auth_header("CS-PG", "s3cret-pass"),
                open_timeout=10,
            )
            client = RawClient(ws)
            answers = [await client.call("BootNotification", BOOT)]
            started = transaction_event("Started", 0, "tx-pg", import_wh=1000)
            updated = transaction_event("Updated", 1, "tx-pg", import_wh=2500)
            for event in (started, updated, updated, started):  # two resent
                answers.append(await client.call("TransactionEvent", event))
            await ws.close()
            return answers

        answers = asyncio.run(station())
        assert all(answer[0] == 3 for answer in answers), answers
        assert count(url, "SELECT COUNT(*) FROM transaction_events") == 2
        assert count(url, "SELECT event_count FROM sessions WHERE transaction_id = 'tx-pg'") == 2
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    assert not (data / "csms.sqlite").exists()
    postgres.drop_database(url)
