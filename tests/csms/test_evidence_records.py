"""Each OCMF record checked alone, for the session page's table (``record_checks``)."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import UJ_PER_WH, EnergyFlow
from chargepoint.meter import Meter, MeterInfo
from csms.evidence import record_checks
from tests.csms.test_evidence import KEY, PUBLIC, T0, WHO, resign, session, texts


def test_each_record_alone_in_page_order_with_its_verdict() -> None:
    begin, middle, end = texts(session())
    other = resign(end, '"TX":"E"', '"TX":"E"', key=ec.generate_private_key(ec.SECP256R1()))
    checks = record_checks([end, "garbage", begin, middle, begin], PUBLIC, expected_id=WHO.id_token)
    assert [(c.page, c.nature) for c in checks] == [
        (1, "Begin"), (2, "Intermediate"), (3, "End"), (None, "Unknown")
    ]  # fmt: skip
    assert [c.problem for c in checks[:3]] == [None, None, None]
    assert checks[0].at == T0 and (checks[0].import_wh, checks[0].export_wh) == (1_000_000, 20_000)
    assert checks[2].at == T0 + timedelta(hours=2) and checks[2].export_wh == 22_000
    assert checks[3].problem is not None and "OCMF" in checks[3].problem
    assert all(len(c.signature) > 100 for c in checks[:3])
    signed_elsewhere = record_checks([begin, other], PUBLIC)
    assert signed_elsewhere[0].problem is None
    assert "signature does not verify" in (signed_elsewhere[1].problem or "")


def test_a_long_session_checks_only_the_first_and_last_records() -> None:
    meter = Meter(KEY, MeterInfo(serial="MTR-1"), import_wh=0, export_wh=0)
    records = [meter.sign("Begin", T0, WHO).text]
    for minute in range(1, 500):
        meter.feed(EnergyFlow(T0, T0, 10 * UJ_PER_WH, 0))
        records.append(meter.sign("Intermediate", T0 + timedelta(minutes=minute), WHO).text)
    checks = record_checks(list(reversed(records)), PUBLIC, limit=10)
    assert [c.page for c in checks] == [1, 2, 3, 4, 5, 496, 497, 498, 499, 500]
    assert checks[-1].import_wh == 4_990
