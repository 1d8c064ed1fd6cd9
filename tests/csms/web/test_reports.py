"""Exports: OCPI 2.2.1 CDRs checked against the spec's field rules, and CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from csms.model import SettlementRecord
from csms.reports import CdrParty, cdr, to_csv
from csms.review import load_rows
from tests.csms.web.ocpi_rules import CDR, violations
from tests.csms.web.world import (
    EXPECTED_AMOUNT,
    OPERATOR,
    OPERATOR_PW,
    STATION,
    World,
    commit_pending,
)


def test_the_rules_catch_a_broken_cdr() -> None:
    assert violations({}, CDR)[:2] == ["cdr.country_code: required", "cdr.party_id: required"]
    bad = {"country_code": "DEU", "total_energy": "4", "credit": "yes", "extra": 1}
    found = violations(bad, CDR)
    assert "cdr.country_code: longer than 2" in found
    assert any(f.startswith("cdr.total_energy:") for f in found)
    assert any(f.startswith("cdr.credit:") for f in found)
    assert "cdr.extra: not an OCPI field" in found


async def export(world: World) -> list[dict[str, Any]]:
    party = CdrParty(country_code="NL", party_id="ABC")
    out = []
    for record in await world.store.list_settlements():
        if record.body is None:
            continue
        session = await world.store.get_session(record.station_id, record.transaction_id)
        assert session is not None
        samples = await world.store.meter_samples(record.station_id, record.transaction_id)
        out.append(cdr(record, session, samples, party))
    return out


async def test_cdr_follows_the_ocpi_rules_with_net_energy_and_ocmf(world: World) -> None:
    [settled] = await export(world)
    assert violations(settled, CDR) == []
    assert settled["id"] == world.settlement_id
    assert settled["country_code"] == "NL" and settled["party_id"] == "ABC"
    nets = [
        next(d["volume"] for d in p["dimensions"] if d["type"] == "ENERGY")
        for p in settled["charging_periods"]
    ]
    assert nets == [4.0, -2.5]  # 4 kWh charged, then 0.5 in and 3 out: net -2.5
    assert settled["total_energy"] == sum(nets) == 1.5
    assert settled["total_cost"]["excl_vat"] == EXPECTED_AMOUNT / 1_000_000 == -0.1
    assert settled["total_time"] == 1.25
    values = settled["signed_data"]["signed_values"]
    assert [v["nature"] for v in values] == ["Begin", "Intermediate", "End"]
    for value in values:
        assert value["signed_data"].startswith("OCMF|" + value["plain_data"] + "|")
    assert settled["signed_data"]["public_key"].startswith("oca:base16:asn1:")
    assert "credit" not in settled
    json.dumps(settled)  # serialisable as is


async def test_a_correction_exports_as_a_credit_cdr(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.post(
        f"/api/sessions/{world.settlement_id}/credit",
        json={"reason": "wrong tariff"},
        auth=(OPERATOR, OPERATOR_PW),
    )
    assert answer.status_code == 201
    await commit_pending(world.data_dir, world.store)
    cdrs = {c["id"]: c for c in await export(world)}
    credit = cdrs[answer.json()["credit_id"]]
    assert violations(credit, CDR) == []
    assert credit["credit"] is True and credit["credit_reference_id"] == world.settlement_id
    assert credit["total_cost"]["excl_vat"] == -cdrs[world.settlement_id]["total_cost"]["excl_vat"]
    assert credit["total_energy"] == -cdrs[world.settlement_id]["total_energy"]


async def test_csv_has_one_line_per_session_and_per_credit(world: World) -> None:
    record = await world.store.get_settlement(world.settlement_id)
    assert isinstance(record, SettlementRecord)
    rows = await load_rows(world.store)
    lines = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(lines) == 2
    good = next(line for line in lines if line["id"] == world.settlement_id)
    assert good["station_id"] == STATION and good["status"] == "committed"
    assert (good["import_wh"], good["export_wh"], good["amount"]) == ("4500", "3000", "-100000")
    assert good["block_height"] == "1" and good["block_hash"] == record.block_hash
