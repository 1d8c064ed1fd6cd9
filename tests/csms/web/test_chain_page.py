"""The chain page: the last block's time, and the blocks that hold this CSMS's settlements."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime

import httpx

from csms.web.formats import age
from tests.csms.web.test_pages import log_in
from tests.csms.web.world import AUDITOR, AUDITOR_PW, World


async def test_chain_page_shows_the_last_block_time_and_links_its_settlements(
    client: httpx.AsyncClient, world: World
) -> None:
    record = await world.store.get_settlement(world.settlement_id)
    assert record is not None and record.receipt is not None
    block_ms = json.loads(record.receipt)["header"]["time"]
    when = f"{datetime.fromtimestamp(block_ms / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC"
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get("/chain")).text
    shown = re.search(r'id="last-block-time">([^<]+)<', page)
    assert shown is not None and shown[1].startswith(f"{when} (") and shown[1].endswith(" ago)")
    assert '<a href="/chain/blocks/1">1</a>' in page
    assert f'href="/chain/blocks/1#{world.settlement_id}"' in page
    assert world.flagged_id not in page  # flagged: in no block
    api = (await client.get("/api/chain")).json()
    assert api["last_block_time"] == datetime.fromtimestamp(block_ms / 1000, UTC).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


async def test_block_page_lists_its_settlements(client: httpx.AsyncClient, world: World) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = await client.get("/chain/blocks/1")
    assert page.status_code == 200
    assert '<span id="block-height">1</span>' in page.text
    assert f'<tr id="{world.settlement_id}">' in page.text
    assert f'href="/sessions/{world.settlement_id}"' in page.text and "-0.10 EUR" in page.text
    assert "1 in the block, 1 of them this CSMS" in page.text
    missing = await client.get("/chain/blocks/7")
    assert missing.status_code == 404 and "holds no settlement" in missing.text
    bad = await client.get("/chain/blocks/x1")
    assert bad.status_code == 400 and "whole number" in bad.text
    client.cookies.clear()
    assert (await client.get("/chain/blocks/1")).status_code == 401


def test_ages_read_as_a_person_would_say_them() -> None:
    assert [age(s) for s in (-3, 42, 119, 600, 7199, 7260, 49 * 3600 + 60)] == [
        "0 s", "42 s", "119 s", "10 min", "119 min", "2 h 1 min", "2 d 1 h"
    ]  # fmt: skip


async def test_without_a_readable_ledger_the_newest_receipt_tells_the_block_time(
    client: httpx.AsyncClient, world: World
) -> None:
    shutil.rmtree(world.data_dir / "validators")  # e.g. validators on other hosts
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get("/chain")).text
    assert "No ledger found" in page
    assert re.search(
        r'id="last-block-time">Newest block holding a settlement of this CSMS: height 1,'
        r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
        page,
    )
