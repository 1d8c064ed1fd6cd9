"""``v2g operators``, ``v2g sessions``, ``v2g dashboard`` (click groups; dashboard as a process).

The commands run their own event loop, so async tests call them from a worker thread.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from csms.cli_review import _sink, operators_group, sessions_group, write_cdrs, write_sessions
from csms.model import SettlementRecord
from csms.reports import CdrParty, cdr, cdrs_json, csv_rows
from csms.review import load_rows
from tests.csms.web.ocpi_rules import CDR, violations
from tests.csms.web.world import OPERATOR, OPERATOR_PW, STATION, World
from tests.table_checks import assert_aligned


@pytest.fixture
async def data_dir(world: World) -> Path:
    """The world's data dir with its store closed, as a command finds it."""
    await world.store.close()
    world.store = await type(world.store).open(":memory:")  # the fixture closes this one
    return world.data_dir


async def arun(group: object, *args: str) -> str:
    return await asyncio.to_thread(run, group, *args)


async def ainvoke(group: object, args: list[str]) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, group, args)  # type: ignore[arg-type]


def run(group: object, *args: str) -> str:
    result = CliRunner().invoke(group, list(args), catch_exceptions=False)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result.output


def test_operators_add_list_remove(tmp_path: Path) -> None:
    d = str(tmp_path / "csms")
    assert "added auditor carol" in run(
        operators_group,
        "add",
        "carol",
        "--password",
        "pw-of-carol",
        "--role",
        "auditor",
        "--data-dir",
        d,
    )
    run(operators_group, "add", "dave", "--password", "pw-of-dave-1", "--data-dir", d)
    listed = run(operators_group, "list", "--data-dir", d)
    assert [line.split()[:2] for line in listed.splitlines()] == [
        ["NAME", "ROLE"],
        ["carol", "auditor"],
        ["dave", "operator"],
    ]
    assert "pw-of" not in listed
    again = CliRunner().invoke(
        operators_group, ["add", "dave", "--password", "another-pw", "--data-dir", d]
    )
    assert again.exit_code == 1 and "already exists" in again.output
    short = CliRunner().invoke(
        operators_group, ["add", "eve", "--password", "short", "--data-dir", d]
    )
    assert short.exit_code == 2 and "8 characters" in short.output  # bad usage, as everywhere
    assert "removed carol" in run(operators_group, "remove", "carol", "--data-dir", d)
    gone = CliRunner().invoke(operators_group, ["remove", "carol", "--data-dir", d])
    assert gone.exit_code == 1 and "no operator" in gone.output


async def test_sessions_list_is_an_aligned_table_with_units(data_dir: Path, world: World) -> None:
    rows = assert_aligned(await arun(sessions_group, "list", "--data-dir", str(data_dir)))
    assert rows[0] == [
        "SETTLEMENT",
        "STARTED (UTC)",
        "ENDED (UTC)",
        "STATION",
        "IMPORT kWh",
        "EXPORT kWh",
        "AMOUNT",
        "STATUS",
        "REASON",
    ]
    by_id = {row[0]: row for row in rows[1:]}
    good = by_id[world.settlement_id]
    assert good[3:] == [STATION, "4.500", "3.000", "-0.10 EUR", "committed"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", good[1]), good
    flagged = by_id[world.flagged_id]
    assert flagged[-2] == "flagged" and flagged[-1], flagged  # the reason is shown


async def test_sessions_list_show_and_export(data_dir: Path, world: World, tmp_path: Path) -> None:
    d = str(data_dir)
    table = await arun(sessions_group, "list", "--data-dir", d)
    header, *lines = table.splitlines()
    assert header.split()[:3] == ["SETTLEMENT", "STARTED", "(UTC)"]
    good = next(line for line in lines if line.startswith(world.settlement_id))
    assert STATION in good and "4.500" in good and "-0.10 EUR" in good and "committed" in good
    rows = json.loads(await arun(sessions_group, "list", "--data-dir", d, "--format", "json"))
    assert {r["id"] for r in rows} == {world.settlement_id, world.flagged_id}
    parsed = list(
        csv.DictReader(
            io.StringIO(await arun(sessions_group, "list", "--data-dir", d, "--format", "csv"))
        )
    )
    assert {r["status"] for r in parsed} == {"committed", "flagged"}

    shown = json.loads(await arun(sessions_group, "show", world.settlement_id, "--data-dir", d))
    assert shown["session"]["amount"] == -100_000 and shown["block"]["height"] == 1
    missing = await ainvoke(sessions_group, ["show", "stl-none", "--data-dir", d])
    assert missing.exit_code == 1 and "no session" in missing.output

    out = tmp_path / "cdrs.json"
    await arun(sessions_group, "export", "--format", "ocpi", "--data-dir", d, "--output", str(out),
        "--country-code", "nl", "--party-id", "abc")  # fmt: skip
    cdrs = json.loads(out.read_text())
    assert [c["id"] for c in cdrs] == [world.settlement_id]  # the flagged session has no CDR
    assert violations(cdrs[0], CDR) == [] and cdrs[0]["party_id"] == "ABC"
    exported = await arun(sessions_group, "export", "--format", "csv", "--data-dir", d)
    assert exported.splitlines()[0].startswith("id,kind,settlement_id")


async def test_sessions_list_is_written_a_page_at_a_time_and_limited(world: World) -> None:
    """Read a session at a time, the list is the same text as the one-piece one; a limit
    keeps the newest and says that more were left."""
    rows = await load_rows(world.store)
    assert len(rows) == 2
    pieces: list[str] = []
    more = await write_sessions(world.store, "json", 0, pieces.append, page=1)
    assert "".join(pieces) == json.dumps(csv_rows(rows), indent=2) + "\n" and not more
    assert len(pieces) == 3  # a piece per session, then the end
    pieces.clear()
    assert await write_sessions(world.store, "json", 1, pieces.append, page=1)  # more left
    assert [r["id"] for r in json.loads("".join(pieces))] == [rows[0].id]
    pieces.clear()
    assert not await write_sessions(world.store, "table", 2, pieces.append, page=1)
    lines = "".join(pieces).splitlines()
    assert lines[0].startswith("SETTLEMENT") and len(lines) == 3  # one header, two sessions
    assert [line.split()[0] for line in lines[1:]] == [r.settlement_id or r.id for r in rows]
    pieces.clear()
    await write_sessions(world.store, "csv", 1, pieces.append, page=1)
    assert [r["id"] for r in csv.DictReader(io.StringIO("".join(pieces)))] == [rows[0].id]


async def test_sessions_list_limit_on_the_command_line(data_dir: Path) -> None:
    d = str(data_dir)
    one = await ainvoke(sessions_group, ["list", "--data-dir", d, "--limit", "1"])
    assert one.exit_code == 0 and len(one.stdout.splitlines()) == 2  # header and one
    assert "--limit 0 lists all" in one.stderr
    bad = await ainvoke(sessions_group, ["list", "--data-dir", d, "--limit", "-1"])
    assert bad.exit_code == 2 and "Usage:" in bad.output


async def test_settlements_are_read_a_keyset_page_at_a_time(world: World) -> None:
    store = world.store
    ids = sorted([world.settlement_id, world.flagged_id])
    first = await store.settlements_after(None, 1)
    second = await store.settlements_after(first[0].settlement_id, 1)
    assert [r.settlement_id for r in first + second] == ids
    assert await store.settlements_after(ids[-1], 1) == []
    settled = await store.settlements_after(None, 10, settled_only=True)
    assert [r.settlement_id for r in settled] == [world.settlement_id]


async def test_ocpi_export_pages_give_the_cdrs_of_one_read(world: World) -> None:
    """Read a settlement at a time, the export is the JSON array of every CDR, each once."""
    party = CdrParty(country_code="NL", party_id="ABC")
    reads: list[int] = []
    store = world.store
    read = store.settlements_after

    async def counted(after: str | None, limit: int, **kw: bool) -> list[SettlementRecord]:
        found = await read(after, limit, **kw)
        reads.append(len(found))
        return found

    store.settlements_after = counted  # type: ignore[method-assign]
    pieces: list[str] = []
    assert await write_cdrs(store, party, pieces.append, page=1) == 1
    assert reads == [1, 0]  # one settled record a page, then the empty page that ends it
    record = await store.get_settlement(world.settlement_id)
    session = await store.get_session(STATION, "tx-good")
    station = await store.get_station(STATION)
    assert record is not None and session is not None and station is not None
    samples = await store.meter_samples(STATION, "tx-good")
    whole = cdr(record, session, samples, party, meter_key=station.meter_key)
    assert "".join(pieces) == cdrs_json([whole])
    assert json.loads("".join(pieces))[0]["id"] == world.settlement_id


async def test_an_export_that_fails_leaves_the_output_as_it_was(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cdrs.json"
    out.write_text("last month's\n")
    (data_dir / "csms.sqlite").write_bytes(b"not a database")
    result = await ainvoke(
        sessions_group, ["export", "--format", "ocpi", "--data-dir", str(data_dir),
                         "--output", str(out)]
    )  # fmt: skip
    assert result.exit_code == 1 and "cannot open the database" in result.output
    assert out.read_text() == "last month's\n"
    with pytest.raises(RuntimeError), _sink(out) as write:  # fails halfway through
        write("[\n  {")
        raise RuntimeError("the database went away")
    assert out.read_text() == "last month's\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with _sink(out) as write:
        write("[]\n")
    assert out.read_text() == "[]\n"


@pytest.mark.slow  # a real process: ~1-2 s to import and serve
def test_dashboard_serves_a_data_dir_read_only(tmp_path: Path) -> None:
    d = tmp_path / "csms"
    run(operators_group, "add", OPERATOR, "--password", OPERATOR_PW, "--data-dir", str(d))
    code = (
        "import sys; from csms.cli_review import dashboard_command; dashboard_command(sys.argv[1:])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--data-dir", str(d), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "read-only" in line, line
        url = line.strip().split(" on ")[1]
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/api/sessions").status_code == 401
            assert http.get("/api/sessions", auth=(OPERATOR, OPERATOR_PW)).json() == []
            act = http.post(f"/api/stations/{STATION}/reset", json={}, auth=(OPERATOR, OPERATOR_PW))
            assert act.status_code == 409 and "read-only" in act.json()["detail"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_dashboard_refuses_a_missing_data_dir(tmp_path: Path) -> None:
    from csms.cli_review import dashboard_command

    result = await asyncio.to_thread(
        CliRunner().invoke, dashboard_command, ["--data-dir", str(tmp_path / "nope")]
    )
    assert result.exit_code == 1 and "no such data dir" in result.output
