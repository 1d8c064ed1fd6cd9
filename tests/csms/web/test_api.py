"""The JSON API: authentication, roles, filters, session detail, receipts and credits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from ledger.cli import ledger_group
from ledger.errors import ReceiptError
from ledger.genesis import load_genesis
from ledger.receipt import receipt_from_dict, verify_receipt
from tests.csms.web.world import (
    AUDITOR,
    AUDITOR_PW,
    EXPECTED_AMOUNT,
    OPERATOR,
    OPERATOR_PW,
    OTHER_STATION,
    PSEUDONYM,
    STATION,
    World,
    commit_pending,
)

AS_OPERATOR = (OPERATOR, OPERATOR_PW)
AS_AUDITOR = (AUDITOR, AUDITOR_PW)


@pytest.mark.parametrize(
    "path",
    ["/api/sessions", "/api/chain", "/api/stations", "/metrics", "/api/openapi.json"],
)
async def test_anonymous_and_wrong_password_get_401(client: httpx.AsyncClient, path: str) -> None:
    anonymous = await client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert (await client.get(path, auth=(OPERATOR, "not-the-password"))).status_code == 401
    assert (await client.get(path, auth=("nobody", OPERATOR_PW))).status_code == 401
    assert (await client.get(path, auth=AS_AUDITOR)).status_code == 200


async def test_anonymous_detail_receipt_and_actions_get_401(
    client: httpx.AsyncClient, world: World
) -> None:
    sid = world.settlement_id
    assert (await client.get(f"/api/sessions/{sid}")).status_code == 401
    assert (await client.get(f"/api/sessions/{sid}/receipt")).status_code == 401
    credit = await client.post(f"/api/sessions/{sid}/credit", json={"reason": "x"})
    assert credit.status_code == 401
    garbage = await client.get("/api/sessions", headers={"Authorization": "Basic !!!"})
    assert garbage.status_code == 401


async def test_an_auditor_reads_but_cannot_act(client: httpx.AsyncClient, world: World) -> None:
    sid = world.settlement_id
    assert (await client.get(f"/api/sessions/{sid}", auth=AS_AUDITOR)).status_code == 200
    attempts = [
        (f"/api/sessions/{sid}/credit", {"reason": "goodwill"}),
        (f"/api/stations/{STATION}/start", {"id_token": "T1"}),
        (f"/api/stations/{STATION}/stop", {"transaction_id": "tx-good"}),
        (f"/api/stations/{STATION}/reset", {"type": "Immediate"}),
    ]
    for path, body in attempts:
        answer = await client.post(path, json=body, auth=AS_AUDITOR)
        assert answer.status_code == 403, path
        assert "auditor" in answer.json()["detail"]
    assert len(await world.store.list_settlements()) == 2  # nothing was credited


async def test_actions_in_a_read_only_view_are_refused_with_a_reason(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        f"/api/stations/{STATION}/start", json={"id_token": "T1"}, auth=AS_OPERATOR
    )
    assert answer.status_code == 409
    assert "read-only" in answer.json()["detail"]


class FakeStations:
    """Stands in for StationService: records the calls, answers like a station."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def connected(self) -> list[str]:
        return [STATION]

    def ocpp_version(self, station_id: str) -> str:
        return "ocpp2.0.1"

    async def request_start_transaction(self, station_id: str, id_token: str, **kw: Any) -> Any:
        self.calls.append(("start", station_id, {"id_token": id_token, **kw}))
        return {"status": "Accepted"}

    async def request_stop_transaction(self, station_id: str, transaction_id: str) -> Any:
        self.calls.append(("stop", station_id, {"transaction_id": transaction_id}))
        return {"status": "Accepted"}

    async def reset(self, station_id: str, reset_type: str, evse_id: int | None) -> Any:
        self.calls.append(("reset", station_id, {"type": reset_type}))
        return {"status": "Scheduled"}


async def test_an_operator_starts_stops_and_resets_a_connected_station(world: World) -> None:
    for station_id in (STATION, OTHER_STATION):
        await world.store.set_connector_status(station_id, 1, 1, "Available", "2026-11-25T10:00Z")
    stations = FakeStations()
    deps = ReviewDeps(store=world.store, data_dir=world.data_dir, stations=stations)  # type: ignore[arg-type]
    web = await start_web(deps, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
            base = f"/api/stations/{STATION}"
            start = await http.post(
                f"{base}/start", json={"id_token": "TMP1", "evse_id": 1}, auth=AS_OPERATOR
            )
            assert start.status_code == 200 and start.json()["response"] == {"status": "Accepted"}
            stop = await http.post(f"{base}/stop", json={"transaction_id": "t9"}, auth=AS_OPERATOR)
            assert stop.status_code == 200
            reset = await http.post(f"{base}/reset", json={"type": "OnIdle"}, auth=AS_OPERATOR)
            assert reset.json()["response"]["status"] == "Scheduled"
            bad = await http.post(f"{base}/reset", json={"type": "Hard"}, auth=AS_OPERATOR)
            assert bad.status_code == 422
            listed = (await http.get("/api/stations", auth=AS_AUDITOR)).json()
    finally:
        await web.stop()
    assert [c[0] for c in stations.calls] == ["start", "stop", "reset"]
    assert stations.calls[0][2] == {"id_token": "TMP1", "token_type": None, "evse_id": 1}
    assert stations.calls[2][2] == {"type": "OnIdle"}
    by_id = {s["station_id"]: s for s in listed}
    assert by_id[STATION]["connected"] and by_id[STATION]["ocpp_version"] == "ocpp2.0.1"
    assert not by_id[OTHER_STATION]["connected"]
    assert [c["status"] for c in by_id[STATION]["connectors"]] == ["Available"]
    # a disconnected station's connectors are not known to be available
    assert [c["status"] for c in by_id[OTHER_STATION]["connectors"]] == ["Unknown"]
    assert by_id[STATION]["clock_skew_s"] is not None  # from its transaction events


async def ids(client: httpx.AsyncClient, **params: str) -> set[str]:
    answer = await client.get("/api/sessions", params=params, auth=AS_AUDITOR)
    assert answer.status_code == 200, answer.text
    return {row["id"] for row in answer.json()}


async def test_filters(client: httpx.AsyncClient, world: World) -> None:
    good, bad = world.settlement_id, world.flagged_id
    assert await ids(client) == {good, bad}
    assert await ids(client, station=STATION) == {good}
    assert await ids(client, station="nowhere") == set()
    assert await ids(client, status="committed") == {good}
    assert await ids(client, status="flagged") == {bad}
    assert await ids(client, bad_evidence="true") == {bad}
    assert await ids(client, bad_evidence="false") == {good}
    assert await ids(client, pseudonym=PSEUDONYM) == {good, bad}
    assert await ids(client, pseudonym="v1:someone-else") == set()
    # the good session starts 16:30, the flagged one 16:31
    assert await ids(client, since="2026-11-25T16:30:30Z") == {bad}
    assert await ids(client, until="2026-11-25T16:30:30Z") == {good}
    assert await ids(client, since="2026-11-25", until="2026-11-26") == {good, bad}
    assert await ids(client, since="2026-11-26") == set()
    assert await ids(client, limit="1") == {bad}  # newest first
    assert await ids(client, limit="1", offset="1") == {good}
    wrong = await client.get("/api/sessions", params={"since": "yesterday"}, auth=AS_AUDITOR)
    assert wrong.status_code == 400 and "since" in wrong.json()["detail"]


async def test_session_detail(client: httpx.AsyncClient, world: World) -> None:
    answer = await client.get(f"/api/sessions/{world.settlement_id}", auth=AS_AUDITOR)
    assert answer.status_code == 200
    detail = answer.json()
    session = detail["session"]
    assert session["settlement_id"] == world.settlement_id
    assert (session["import_wh"], session["export_wh"]) == (4_500, 3_000)
    assert session["amount"] == EXPECTED_AMOUNT == -100_000
    assert session["status"] == "committed" and session["currency"] == "EUR"
    assert [i["import_wh"] for i in detail["intervals"]] == [4_000, 500]
    assert [i["export_wh"] for i in detail["intervals"]] == [0, 3_000]
    assert len(detail["samples"]) == 5 * 4 and sum(s["signed"] for s in detail["samples"]) == 3
    assert detail["evidence"]["ok"] is True
    assert [r["nature"] for r in detail["evidence"]["records"]] == ["Begin", "Intermediate", "End"]
    assert detail["block"]["height"] == 1
    assert detail["block"]["hash"] == detail["receipt"]["block_id"]
    assert detail["settlement"]["settlement_id"] == world.settlement_id
    # the same session by its station:transaction key
    by_key = await client.get(f"/api/sessions/{STATION}:tx-good", auth=AS_AUDITOR)
    assert by_key.json()["session"]["id"] == world.settlement_id

    flagged = (await client.get(f"/api/sessions/{world.flagged_id}", auth=AS_AUDITOR)).json()
    assert flagged["evidence"]["ok"] is False
    assert flagged["evidence"]["code"] == "wrong_meter_key"
    assert flagged["session"]["bad_evidence"] is True and flagged["block"] is None
    missing = await client.get("/api/sessions/stl-nope", auth=AS_AUDITOR)
    assert missing.status_code == 404


async def test_receipt_round_trip_verifies_offline(
    client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    answer = await client.get(f"/api/sessions/{world.settlement_id}/receipt", auth=AS_AUDITOR)
    assert answer.status_code == 200
    genesis = load_genesis(world.genesis_path)
    verify_receipt(receipt_from_dict(answer.json()), genesis)
    path = tmp_path / "receipt.json"
    path.write_text(answer.text)
    ok = CliRunner().invoke(
        ledger_group, ["verify-receipt", str(path), "--genesis", str(world.genesis_path)]
    )
    assert ok.exit_code == 0, ok.output
    tampered = answer.json()
    tampered["settlement"]["energy"]["export_wh"] += 1
    with pytest.raises(ReceiptError):
        verify_receipt(receipt_from_dict(tampered), genesis)
    path.write_text(json.dumps(tampered))
    refused = CliRunner().invoke(
        ledger_group, ["verify-receipt", str(path), "--genesis", str(world.genesis_path)]
    )
    assert refused.exit_code != 0
    none_yet = await client.get(f"/api/sessions/{world.flagged_id}/receipt", auth=AS_AUDITOR)
    assert none_yet.status_code == 404


async def test_a_credit_is_committed_like_a_settlement_and_shown_beside_it(
    client: httpx.AsyncClient, world: World
) -> None:
    sid = world.settlement_id
    answer = await client.post(
        f"/api/sessions/{sid}/credit", json={"reason": "meter fault at bay 3"}, auth=AS_OPERATOR
    )
    assert answer.status_code == 201, answer.text
    credit = answer.json()
    assert credit["corrects"] == sid and credit["status"] == "pending"
    assert credit["amount"] == -EXPECTED_AMOUNT  # a full reversal
    stored = await world.store.get_settlement(credit["credit_id"])
    assert (
        stored is not None and stored.kind == "credit" and stored.reason == "meter fault at bay 3"
    )
    assert stored.tx is not None and b"meter fault" not in stored.tx  # the reason stays off-chain
    assert await world.store.outbox_size() == 1

    assert await commit_pending(world.data_dir, world.store) == 2  # the validators accept it
    detail = (await client.get(f"/api/sessions/{sid}", auth=AS_AUDITOR)).json()
    [shown] = detail["session"]["credits"]
    assert shown["settlement_id"] == credit["credit_id"] and shown["status"] == "committed"
    assert shown["reason"] == "meter fault at bay 3" and shown["block_height"] == 2
    assert detail["session"]["amount"] == EXPECTED_AMOUNT  # the original is never changed
    twice = await client.post(
        f"/api/sessions/{sid}/credit", json={"reason": "again"}, auth=AS_OPERATOR
    )
    assert twice.status_code == 409 and "twice" in twice.json()["detail"]
    receipt = await client.get(f"/api/sessions/{credit['credit_id']}/receipt", auth=AS_AUDITOR)
    verify_receipt(receipt_from_dict(receipt.json()), load_genesis(world.genesis_path))
    assert receipt.json()["settlement"]["corrects"] == sid


async def test_a_partial_credit_and_refusals(client: httpx.AsyncClient, world: World) -> None:
    sid = world.settlement_id
    partial = await client.post(
        f"/api/sessions/{sid}/credit",
        json={"reason": "goodwill", "amount": 2_500},
        auth=AS_OPERATOR,
    )
    assert partial.status_code == 201 and partial.json()["amount"] == -2_500
    assert await commit_pending(world.data_dir, world.store) == 2
    flagged = await client.post(
        f"/api/sessions/{world.flagged_id}/credit", json={"reason": "x"}, auth=AS_OPERATOR
    )
    assert flagged.status_code == 409  # nothing was settled to correct
    credit_of_credit = await client.post(
        f"/api/sessions/{partial.json()['credit_id']}/credit",
        json={"reason": "x"},
        auth=AS_OPERATOR,
    )
    assert credit_of_credit.status_code == 409
    for body in ({"reason": ""}, {"reason": "x", "amount": 0}, {"amount": 5}):
        answer = await client.post(f"/api/sessions/{sid}/credit", json=body, auth=AS_OPERATOR)
        assert answer.status_code == 422, body


async def test_chain_and_openapi(client: httpx.AsyncClient, world: World) -> None:
    chain = (await client.get("/api/chain", auth=AS_AUDITOR)).json()
    assert chain["available"] and chain["height"] == 1 and chain["verified"] is True
    assert chain["chain_id"] == "review-chain"
    assert len(chain["validators"]) == 4
    assert all(v["last_vote_height"] == 1 for v in chain["validators"])
    assert chain["settlements"] == {"pending": 0, "committed": 1, "flagged": 1, "rejected": 0}
    spec = (await client.get("/api/openapi.json", auth=AS_AUDITOR)).json()
    assert {"/api/sessions", "/api/sessions/{review_id}/receipt", "/api/chain"} <= set(
        spec["paths"]
    )
    assert "post" in spec["paths"]["/api/sessions/{review_id}/credit"]


async def test_a_flagged_session_is_resettled_once_its_meter_key_is_fixed(
    client: httpx.AsyncClient, world: World
) -> None:
    from csms.evidence import parse_public_key, public_key_pem

    path = f"/api/sessions/{world.flagged_id}/resettle"
    refused = await client.post(path, auth=AS_AUDITOR)
    assert refused.status_code == 403
    still = await client.post(path, auth=AS_OPERATOR)
    assert still.status_code == 200 and still.json()["status"] == "flagged", still.text
    assert still.json()["reason"]
    # the station's meter key was registered wrong: register the one its records carry
    samples = await world.store.meter_samples(OTHER_STATION, "tx-bad")
    carried = next(json.loads(s.signed)["publicKey"] for s in samples if s.signed)
    await world.store.set_meter_key(OTHER_STATION, public_key_pem(parse_public_key(carried)))
    done = await client.post(path, auth=AS_OPERATOR)
    assert done.status_code == 200 and done.json()["status"] == "pending", done.text
    settled = await world.store.settlement_for_session(OTHER_STATION, "tx-bad")
    assert settled is not None and settled.status == "pending" and settled.amount is not None
    log = await world.store.resettlements(settled.settlement_id)
    assert [(who, outcome) for who, _, outcome, _ in log] == [
        (OPERATOR, "flagged"),
        (OPERATOR, "pending"),
    ]
    again = await client.post(path, auth=AS_OPERATOR)
    assert again.status_code == 409 and "only a flagged one" in again.json()["detail"]


async def test_the_pages_say_who_pays_for_an_amount(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await client.post(
        "/login", data={"name": OPERATOR, "password": OPERATOR_PW}, follow_redirects=False
    )
    assert login.status_code in (302, 303), login.text
    for path in ("/sessions", f"/sessions/{world.settlement_id}"):
        page = await client.get(path)
        assert page.status_code == 200 and "the driver is paid" in page.text, path


async def test_the_sessions_page_totals_links_csv_and_says_why_a_session_is_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await client.post(
        "/login", data={"name": AUDITOR, "password": AUDITOR_PW}, follow_redirects=False
    )
    assert login.status_code in (302, 303), login.text
    page = (await client.get("/sessions")).text
    rows = await world.store.list_sessions()
    total_import = sum(s.import_wh for s in rows) / 1000
    assert 'id="total-import"' in page and f"{total_import:,.3f}" in page
    flagged = await world.store.get_settlement(world.flagged_id)
    assert flagged is not None and flagged.reason and flagged.reason.split(":")[0] in page
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d{3}Z", page)  # compact times in the table
    assert 'href="/sessions.csv"' in page
    csv_text = (await client.get("/sessions.csv")).text
    assert csv_text.splitlines()[0].startswith("settlement_id") or "," in csv_text.splitlines()[0]
    assert len(csv_text.splitlines()) >= 1 + len(rows)


async def test_a_session_its_credit_and_the_counts_read_no_other_settlement(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def every_settlement(*_: object, **__: object) -> None:
        raise AssertionError("read every settlement of the CSMS")

    monkeypatch.setattr(world.store, "list_settlements", every_settlement)
    sid = world.settlement_id
    assert (await client.get(f"/api/sessions/{sid}", auth=AS_AUDITOR)).status_code == 200
    credit = await client.post(
        f"/api/sessions/{sid}/credit", json={"reason": "r"}, auth=AS_OPERATOR
    )
    assert credit.status_code == 201, credit.text
    twice = await client.post(f"/api/sessions/{sid}/credit", json={"reason": "r"}, auth=AS_OPERATOR)
    assert twice.status_code == 409 and "twice" in twice.json()["detail"]
    [shown] = (await client.get(f"/api/sessions/{sid}", auth=AS_AUDITOR)).json()["session"][
        "credits"
    ]
    assert shown["settlement_id"] == credit.json()["credit_id"]
    chain = (await client.get("/api/chain", auth=AS_AUDITOR)).json()
    assert chain["settlements"] == {"pending": 1, "committed": 1, "flagged": 1, "rejected": 0}
