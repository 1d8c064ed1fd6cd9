"""A session's detail has a bounded size however many samples it holds: the API serves its
samples a page at a time, the page's chart is downsampled."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from csms.model import MeterSample, TransactionEventRecord
from csms.review import CHART_POINTS, SAMPLE_PAGE
from tests.csms.web.test_pages import log_in
from tests.csms.web.world import AUDITOR, AUDITOR_PW, STATION, World

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SAMPLES = 10_000


async def long_session(world: World) -> str:
    """A running session of SAMPLES register samples (stored as two events); its review id."""
    samples = [
        MeterSample(T0 + timedelta(seconds=i), "Energy.Active.Import.Register", 1000 + i, "Wh")
        for i in range(SAMPLES)
    ]
    for seq, part in enumerate((samples[:1], samples[1:])):
        record = TransactionEventRecord(
            station_id=STATION,
            transaction_id="tx-long",
            seq_no=seq,
            event_type="Started" if seq == 0 else "Updated",
            trigger_reason="MeterValuePeriodic",
            offline=False,
            timestamp=part[-1].timestamp,
            evse_id=1,
            connector_id=1,
            id_token=None,
            id_token_type=None,
            stopped_reason=None,
            charging_state=None,
            raw="{}",
            samples=tuple(part),
        )
        assert await world.store.record_transaction_event(record, "2026-11-26T10:00:00.000Z")
    return f"{STATION}:tx-long"


async def test_the_api_serves_samples_a_page_at_a_time(
    client: httpx.AsyncClient, world: World
) -> None:
    review_id = await long_session(world)
    auth = (AUDITOR, AUDITOR_PW)
    first = await client.get(f"/api/sessions/{review_id}", auth=auth)
    assert first.status_code == 200
    assert len(first.content) < 100_000, len(first.content)  # 10,000 samples: about 1.4 MB
    body = first.json()
    assert len(body["samples"]) == SAMPLE_PAGE
    assert (body["samples_offset"], body["samples_limit"]) == (0, SAMPLE_PAGE)
    assert (body["samples_total"], body["samples_dropped"]) == (SAMPLES, 0)
    assert body["samples"][0]["value"] == 1000
    last = await client.get(f"/api/sessions/{review_id}?offset=9900&limit=200", auth=auth)
    values = [s["value"] for s in last.json()["samples"]]
    assert values == list(range(1000 + 9900, 1000 + SAMPLES))
    too_many = await client.get(f"/api/sessions/{review_id}?limit=5001", auth=auth)
    assert too_many.status_code == 422
    assert (await client.get(f"/api/sessions/{review_id}?offset=-1", auth=auth)).status_code == 422


async def test_the_session_page_draws_a_downsampled_chart(
    client: httpx.AsyncClient, world: World
) -> None:
    review_id = await long_session(world)
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = await client.get(f"/sessions/{review_id}")
    assert page.status_code == 200
    assert len(page.content) < 150_000, len(page.content)
    assert f"{SAMPLES} meter sample(s)" in page.text
    drawn = [int(n) for n in re.findall(r'<polyline [^>]*data-points="(\d+)"', page.text)]
    assert drawn and all(CHART_POINTS // 2 <= n <= CHART_POINTS + 1 for n in drawn), drawn
