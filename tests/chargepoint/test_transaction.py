from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargepoint.errors import StateError
from chargepoint.metering import MeterReading, ReadingContext
from chargepoint.transaction import (
    ChargingState,
    ConnectorStatus,
    EventType,
    Evse,
    IdToken,
    MeterSample,
    StoppedReason,
    TriggerReason,
    sample_reading,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = IdToken("04A1B2C3", "ISO14443")
ENERGY = ("Energy.Active.Import.Register", "Energy.Active.Export.Register")


def sample(at: datetime, imp: int = 0, exp: int = 0) -> MeterSample:
    reading = MeterReading(import_wh=imp, export_wh=exp, power_w=0)
    return sample_reading(
        reading, now=at, context=ReadingContext.SAMPLE_PERIODIC, measurands=ENERGY
    )


def started(evse: Evse, tx_id: str = "tx-1") -> None:
    evse.begin(
        now=T0,
        transaction_id=tx_id,
        id_token=TOKEN,
        trigger=TriggerReason.AUTHORIZED,
        meter=sample(T0),
    )


def test_full_transaction_numbers_events_from_zero() -> None:
    evse = Evse(1)
    evse.plug_in()
    first = evse.begin(
        now=T0,
        transaction_id="tx-1",
        id_token=TOKEN,
        trigger=TriggerReason.AUTHORIZED,
        meter=sample(T0, 100, 5),
    )
    mid = evse.update(
        now=T0 + timedelta(minutes=1),
        trigger=TriggerReason.METER_VALUE_PERIODIC,
        meter=sample(T0, 200, 5),
    )
    last = evse.end(
        now=T0 + timedelta(minutes=2),
        trigger=TriggerReason.STOP_AUTHORIZED,
        reason=StoppedReason.LOCAL,
        meter=sample(T0, 300, 5),
    )
    assert [e.event_type for e in (first, mid, last)] == [
        EventType.STARTED,
        EventType.UPDATED,
        EventType.ENDED,
    ]
    assert [e.seq_no for e in (first, mid, last)] == [0, 1, 2]
    assert {e.transaction_id for e in (first, mid, last)} == {"tx-1"}
    assert first.id_token == TOKEN and mid.id_token is None
    assert first.charging_state is ChargingState.CHARGING
    assert last.stopped_reason is StoppedReason.LOCAL
    assert last.charging_state is ChargingState.EV_CONNECTED
    assert evse.transaction is None
    assert evse.status is ConnectorStatus.OCCUPIED
    evse.unplug()
    assert evse.status is ConnectorStatus.AVAILABLE


def test_new_transaction_restarts_seq_no() -> None:
    evse = Evse(1)
    started(evse, "a")
    evse.end(
        now=T0, trigger=TriggerReason.REMOTE_STOP, reason=StoppedReason.REMOTE, meter=sample(T0)
    )
    evse.unplug()
    again = evse.begin(
        now=T0,
        transaction_id="b",
        id_token=TOKEN,
        trigger=TriggerReason.REMOTE_START,
        meter=sample(T0),
        remote_start_id=7,
    )
    assert again.seq_no == 0
    assert again.remote_start_id == 7


def test_second_start_and_stop_of_nothing_are_state_errors() -> None:
    evse = Evse(1)
    with pytest.raises(StateError):
        evse.update(now=T0, trigger=TriggerReason.TRIGGER, meter=None)
    started(evse)
    with pytest.raises(StateError):
        started(evse, "tx-2")
    with pytest.raises(StateError):
        evse.unplug()


def test_inoperative_is_scheduled_until_the_transaction_ends() -> None:
    evse = Evse(1)
    started(evse)
    assert evse.set_operative(False) is False
    assert evse.status is ConnectorStatus.OCCUPIED
    evse.end(
        now=T0, trigger=TriggerReason.STOP_AUTHORIZED, reason=StoppedReason.LOCAL, meter=sample(T0)
    )
    evse.unplug()
    assert evse.status is ConnectorStatus.UNAVAILABLE
    assert not evse.idle
    with pytest.raises(StateError):
        started(evse, "tx-2")
    assert evse.set_operative(True) is True
    assert evse.status is ConnectorStatus.AVAILABLE and evse.idle


def test_idle_evse_goes_inoperative_at_once() -> None:
    evse = Evse(2)
    assert evse.set_operative(False) is True
    assert evse.status is ConnectorStatus.UNAVAILABLE


@given(st.lists(st.sampled_from(["update", "state"]), max_size=30))
def test_seq_no_is_gapless_and_increasing(steps: list[str]) -> None:
    evse = Evse(1)
    seqs = [
        evse.begin(
            now=T0,
            transaction_id="t",
            id_token=TOKEN,
            trigger=TriggerReason.AUTHORIZED,
            meter=sample(T0),
        ).seq_no
    ]
    for step in steps:
        state = ChargingState.SUSPENDED_EV if step == "state" else None
        seqs.append(
            evse.update(
                now=T0, trigger=TriggerReason.TRIGGER, meter=None, charging_state=state
            ).seq_no
        )
    seqs.append(
        evse.end(
            now=T0,
            trigger=TriggerReason.EV_DEPARTED,
            reason=StoppedReason.EV_DISCONNECTED,
            meter=sample(T0),
        ).seq_no
    )
    assert seqs == list(range(len(steps) + 2))


def test_sample_reading_follows_measurand_list_and_splits_power() -> None:
    reading = MeterReading(import_wh=1000, export_wh=50, power_w=-3700, soc=55)
    measurands = (
        "SoC",
        "Power.Active.Export",
        "Power.Active.Import",
        "Energy.Active.Import.Register",
    )
    got = sample_reading(reading, now=T0, context=ReadingContext.TRIGGER, measurands=measurands)
    assert [(v.measurand, v.value, v.unit) for v in got.values] == [
        ("SoC", 55, "Percent"),
        ("Power.Active.Export", 3700, "W"),
        ("Power.Active.Import", 0, "W"),
        ("Energy.Active.Import.Register", 1000, "Wh"),
    ]
    assert all(v.context is ReadingContext.TRIGGER for v in got.values)


def test_sample_reading_omits_soc_when_unknown() -> None:
    reading = MeterReading(import_wh=1, export_wh=2, power_w=0, soc=None)
    got = sample_reading(reading, now=T0, context=ReadingContext.TRIGGER, measurands=("SoC",))
    assert got.values == ()
