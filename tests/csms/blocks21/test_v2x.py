"""A dispatch decision stays within what the EV reported it can do."""

from __future__ import annotations

import pytest

from csms.blocks21.v2x import bound_decision
from csms.dispatch import Decision, DispatchPolicy
from csms.store.charging_needs import EvChargingNeeds

POLICY = DispatchPolicy(export_threshold=100_000, charge_w=11_000, discharge_w=9_000)


def needs(
    transfer: str = "AC_BPT",
    *,
    max_charge_w: int | None = None,
    max_discharge_w: int | None = None,
) -> EvChargingNeeds:
    return EvChargingNeeds(
        "CS",
        1,
        "2026-11-25T10:00:00.000Z",
        transfer,
        max_charge_w=max_charge_w,
        max_discharge_w=max_discharge_w,
    )


@pytest.mark.parametrize(
    ("decision", "reported", "expected"),
    [
        (Decision("discharge", -9_000), None, Decision("discharge", -9_000)),
        (
            Decision("discharge", -9_000),
            needs(max_discharge_w=5_000),
            Decision("discharge", -5_000),
        ),
        (
            Decision("discharge", -4_000),
            needs(max_discharge_w=5_000),
            Decision("discharge", -4_000),
        ),
        (Decision("discharge", -9_000), needs(), Decision("discharge", -9_000)),
        (Decision("discharge", -9_000), needs("AC_three_phase"), Decision("charge", 11_000)),
        (
            Decision("discharge", -9_000),
            needs("DC", max_charge_w=7_000),
            Decision("charge", 7_000),
        ),
        (Decision("discharge", -9_000), needs(max_discharge_w=0), Decision("charge", 11_000)),
        (Decision("charge", 11_000), needs(max_charge_w=7_400), Decision("charge", 7_400)),
        (Decision("charge", 3_000), needs(max_charge_w=7_400), Decision("charge", 3_000)),
    ],
)
def test_bound_decision(
    decision: Decision, reported: EvChargingNeeds | None, expected: Decision
) -> None:
    assert bound_decision(decision, reported, POLICY) == expected


def test_an_ev_offering_bpt_among_available_modes_may_discharge() -> None:
    offered = EvChargingNeeds(
        "CS", 1, "t", "AC_three_phase", available_transfer=("AC_three_phase", "AC_BPT")
    )
    assert bound_decision(Decision("discharge", -2_000), offered, POLICY) == Decision(
        "discharge", -2_000
    )
