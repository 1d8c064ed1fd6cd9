"""``/metrics`` of a CSMS with its embedded validators: the CSMS's connection to each
validator and the validators' own links, scraped over HTTP; the counters only grow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.operators import OperatorRegistry
from ledger.consensus.client import ValidatorSession
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.handshake import Role, Side, new_hello, prove
from ledger.consensus.runner import Tuning
from ledger.consensus.state import TimeoutConfig
from ledger.consensus.wire import Hello, dump, load
from ledger.devchain import demo_settlement_body
from ledger.keys import generate_key
from ledger.tx import sign_tx
from tests.csms.web.test_metrics import parse

FAST = Tuning(
    timeouts=TimeoutConfig(300, 100, 200, 100, 200, 100), block_interval_ms=50,
    gossip_interval_ms=100,
)  # fmt: skip


async def scrape(app: CsmsApp) -> dict[str, float]:
    assert app.web is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
        answer = await http.get("/metrics", auth=("auditor", "auditor-pw"))
    assert answer.status_code == 200
    return parse(answer.text)


async def settle(app: CsmsApp, n: int) -> None:
    assert app.ledger is not None and app.setup is not None
    tx = sign_tx(demo_settlement_body(n), app.setup.signer, app.setup.chain_id)
    await asyncio.wait_for(app.ledger.submit(tx.data), 30)


async def test_link_counters_of_the_csms_and_its_validators(tmp_path: Path) -> None:
    config = CsmsConfig(port=0, http_port=0, close_timeout=0.3)
    app = await start_csms(
        tmp_path / "data", config, ledger="embedded", tuning=FAST, serve_web=True
    )
    try:
        assert app.embedded is not None and app.ledger is not None and app.setup is not None
        await OperatorRegistry(app.store).add("auditor", "auditor-pw", "auditor", "t")
        first_url = app.embedded.urls[0]
        first = app.embedded.nodes[0].address
        await settle(app, 1)
        before = await scrape(app)
        link = f'{{validator="{first_url}"}}'
        assert before[f"v2g_ledger_link_up{link}"] == 1
        assert before[f"v2g_ledger_link_connects_total{link}"] == 1
        assert before[f"v2g_ledger_link_reconnects_total{link}"] == 0
        # the submission and the receipt request out, their answers in
        assert (
            before[f'v2g_ledger_link_messages_total{{validator="{first_url}",direction="out"}}']
            == 2
        )
        assert (
            before[f'v2g_ledger_link_messages_total{{validator="{first_url}",direction="in"}}'] >= 2
        )
        for node in app.embedded.nodes:  # every validator dials its three peers
            for url in app.embedded.urls:
                if url != node.url:
                    peer = f'{{validator="{node.address}",peer="{url}"}}'
                    assert before[f"v2g_validator_peer_up{peer}"] == 1
                    assert before[f"v2g_validator_peer_connects_total{peer}"] >= 1
                    out = f'{{validator="{node.address}",peer="{url}",direction="out"}}'
                    assert before[f"v2g_validator_peer_messages_total{out}"] >= 1
        role = f'{{validator="{first}",role="submitter"}}'
        assert before[f"v2g_validator_connections{role}"] == 1
        inbound = f'{{validator="{first}",role="submitter",direction="in"}}'
        assert before[f"v2g_validator_inbound_messages_total{inbound}"] == 2

        # A stranger: a read-only connection that tries to submit, and a key that is no
        # transaction signer's; then the CSMS's connections drop and are opened again.
        stranger = sign_tx(demo_settlement_body(2), generate_key(), app.setup.chain_id)
        async with ValidatorSession(first_url) as reader:
            try:
                await asyncio.wait_for(reader.submit(stranger), 10)
            except SubmitRejected:
                pass
            else:
                raise AssertionError("a read-only connection submitted")
        async with connect(first_url) as ws:
            theirs = load(await ws.recv())
            assert isinstance(theirs, Hello)
            mine = new_hello(app.setup.chain_id, Role.SUBMITTER)
            await ws.send(dump(mine))
            await ws.send(dump(prove(generate_key(), theirs.chain_id, Side.DIALER, mine, theirs)))
            await ws.wait_closed()
        await app.ledger.close()
        await settle(app, 3)
        after = await scrape(app)
        assert after[f"v2g_ledger_link_connects_total{link}"] == 2
        assert after[f"v2g_ledger_link_reconnects_total{link}"] == 1
        assert after[f'v2g_validator_refused_submissions_total{{validator="{first}"}}'] == 1
        assert after[f'v2g_validator_handshakes_failed_total{{validator="{first}"}}'] == 1
        reader_in = f'{{validator="{first}",role="client",direction="in"}}'
        assert after[f"v2g_validator_inbound_messages_total{reader_in}"] == 1
        for name, value in before.items():
            if "_total{" in name:
                assert after[name] >= value, f"{name} went back from {value} to {after[name]}"
    finally:
        await app.stop()
