"""1.6 transaction messages as session events: seqNos, readings, reasons, identities."""

from __future__ import annotations

import json

import pytest

from csms.blocks16.records import STOP_REASONS, ended_record, started_record, updated_record
from csms.errors import PropertyConstraintViolation

START = {"connectorId": 2, "idTag": "TAG", "meterStart": 1200, "timestamp": "2026-11-25T10:00:00Z"}


def test_start_is_started_with_seq_zero_and_meter_start_as_begin_reading() -> None:
    record = started_record("CS", 17, START, id_token_type="Central")
    assert (record.transaction_id, record.seq_no, record.event_type) == ("17", 0, "Started")
    assert (record.evse_id, record.connector_id) == (2, 1)
    assert (record.id_token, record.id_token_type) == ("TAG", "Central")
    (sample,) = record.samples
    assert (sample.measurand, sample.value, sample.context) == (
        "Energy.Active.Import.Register",
        1200,
        "Transaction.Begin",
    )
    assert json.loads(record.raw) == {
        "ocpp": "1.6",
        "action": "StartTransaction",
        "transactionId": 17,
        **START,
    }


def test_stop_adds_meter_stop_only_when_transaction_data_lacks_an_end_reading() -> None:
    bare = {"transactionId": 17, "meterStop": 3000, "timestamp": "2026-11-25T11:00:00Z"}
    record = ended_record("CS", 17, 4, bare, connector_id=2, id_token_type=None)
    assert (record.seq_no, record.event_type, record.stopped_reason) == (4, "Ended", "Local")
    assert [(s.value, s.context) for s in record.samples] == [(3000, "Transaction.End")]
    assert record.id_token is None and record.id_token_type is None
    with_data = {
        **bare,
        "transactionData": [
            {
                "timestamp": "2026-11-25T11:00:00Z",
                "sampledValue": [{"value": "3.001", "unit": "kWh", "context": "Transaction.End"}],
            }
        ],
    }
    record = ended_record("CS", 17, 4, with_data, connector_id=2, id_token_type=None)
    assert [(s.value, s.context) for s in record.samples] == [(3001, "Transaction.End")]
    phase_only = {
        **bare,
        "transactionData": [
            {
                "timestamp": "2026-11-25T11:00:00Z",
                "sampledValue": [{"value": "1000", "phase": "L1", "context": "Transaction.End"}],
            }
        ],
    }
    record = ended_record("CS", 17, 4, phase_only, connector_id=2, id_token_type=None)
    assert sorted((s.value, s.phase) for s in record.samples) == [(1000, "L1"), (3000, None)]


@pytest.mark.parametrize("reason", sorted(STOP_REASONS))
def test_every_16_stop_reason_maps_to_201_enums(reason: str) -> None:
    from ocpp.v201.enums import ReasonEnumType, TriggerReasonEnumType

    stop = {
        "transactionId": 1,
        "meterStop": 1,
        "timestamp": "2026-11-25T11:00:00Z",
        "reason": reason,
    }
    record = ended_record("CS", 1, 1, stop, connector_id=None, id_token_type=None)
    assert record.stopped_reason in {e.value for e in ReasonEnumType}
    assert record.trigger_reason in {e.value for e in TriggerReasonEnumType}


def test_remote_stop_is_a_remote_stop_trigger() -> None:
    stop = {
        "transactionId": 1,
        "meterStop": 1,
        "timestamp": "2026-11-25T11:00:00Z",
        "reason": "Remote",
    }
    record = ended_record("CS", 1, 1, stop, connector_id=1, id_token_type=None)
    assert (record.stopped_reason, record.trigger_reason) == ("Remote", "RemoteStop")


def test_meter_values_on_connector_zero_name_no_evse() -> None:
    payload = {
        "connectorId": 0,
        "transactionId": 9,
        "meterValue": [{"timestamp": "2026-11-25T10:05:00Z", "sampledValue": [{"value": "7"}]}],
    }
    record = updated_record("CS", 9, 3, payload)
    assert (record.seq_no, record.event_type, record.evse_id) == (3, "Updated", None)


def test_timestamp_without_zone_is_a_property_violation() -> None:
    with pytest.raises(PropertyConstraintViolation, match="timezone"):
        started_record("CS", 1, {**START, "timestamp": "2026-11-25T10:00:00"}, id_token_type="x")
