"""Conversion at the OCPP boundary: domain dataclasses to ``ocpp.v201`` payloads and back.

Outbound: the station's events and readings become ``ocpp.v201.call`` objects with
snake_case dicts (the library camel-cases them). Inbound: the snake_case dicts the library
hands to handlers become the station's own frozen dataclasses; nothing past this module
indexes a raw OCPP dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ocpp.v201 import call, call_result

from chargepoint.charging_profiles import (
    ChargingProfile,
    Criteria,
    Kind,
    Purpose,
    Schedule,
    SchedulePeriod,
)
from chargepoint.clock import format_timestamp
from chargepoint.device_model import (
    ComponentKey,
    GetRequest,
    GetResult,
    Mutability,
    SetRequest,
    SetResult,
    Variable,
    VariableKey,
)
from chargepoint.transaction import ConnectorStatus, IdToken, MeterSample, TxEvent

Json = dict[str, Any]


def id_token_payload(token: IdToken) -> Json:
    """IdTokenType."""
    return {"id_token": token.id_token, "type": token.type}


def meter_value_payload(sample: MeterSample) -> Json:
    """MeterValueType: integers only, units spelled out, signed records carried verbatim."""
    values: list[Json] = []
    for item in sample.values:
        value: Json = {
            "value": item.value,
            "context": str(item.context),
            "measurand": item.measurand,
            "unit_of_measure": {"unit": item.unit},
        }
        if item.signed is not None:
            value["signed_meter_value"] = {
                "signed_meter_data": item.signed.signed_meter_data,
                "signing_method": item.signed.signing_method,
                "encoding_method": item.signed.encoding_method,
                "public_key": item.signed.public_key,
            }
        values.append(value)
    return {"timestamp": format_timestamp(sample.timestamp), "sampled_value": values}


def transaction_event_call(event: TxEvent) -> call.TransactionEvent:
    """A TransactionEvent request for one produced (or replayed) event."""
    info: Json = {"transaction_id": event.transaction_id}
    if event.charging_state is not None:
        info["charging_state"] = str(event.charging_state)
    if event.stopped_reason is not None:
        info["stopped_reason"] = str(event.stopped_reason)
    if event.remote_start_id is not None:
        info["remote_start_id"] = event.remote_start_id
    return call.TransactionEvent(
        event_type=str(event.event_type),
        timestamp=format_timestamp(event.timestamp),
        trigger_reason=str(event.trigger_reason),
        seq_no=event.seq_no,
        transaction_info=info,
        meter_value=[meter_value_payload(s) for s in event.meter if s.values] or None,
        offline=True if event.offline else None,
        evse={"id": event.evse_id, "connector_id": event.connector_id},
        id_token=None if event.id_token is None else id_token_payload(event.id_token),
    )


def boot_notification_call(
    *, vendor: str, model: str, serial: str, reason: str
) -> call.BootNotification:
    """BootNotification with the station's identity."""
    return call.BootNotification(
        charging_station={
            "vendor_name": vendor,
            "model": model,
            "serial_number": serial,
            "firmware_version": "0.1.0",
        },
        reason=reason,
    )


def status_notification_call(
    *, now: datetime, evse_id: int, connector_id: int, status: ConnectorStatus
) -> call.StatusNotification:
    """StatusNotification for one connector."""
    return call.StatusNotification(
        timestamp=format_timestamp(now),
        connector_status=str(status),
        evse_id=evse_id,
        connector_id=connector_id,
    )


def meter_values_call(evse_id: int, sample: MeterSample) -> call.MeterValues:
    """MeterValues outside TransactionEvent (answers a TriggerMessage)."""
    return call.MeterValues(evse_id=evse_id, meter_value=[meter_value_payload(sample)])


def _component(raw: Mapping[str, Any]) -> ComponentKey:
    evse = raw.get("evse") or {}
    return ComponentKey(raw["name"], raw.get("instance"), evse.get("id"))


def _variable(raw: Mapping[str, Any]) -> VariableKey:
    return VariableKey(raw["name"], raw.get("instance"))


def get_requests(raw: Sequence[Mapping[str, Any]]) -> list[GetRequest]:
    """GetVariablesRequest.getVariableData to the device model's requests."""
    return [
        GetRequest(
            _component(item["component"]),
            _variable(item["variable"]),
            item.get("attribute_type", "Actual"),
        )
        for item in raw
    ]


def set_requests(raw: Sequence[Mapping[str, Any]]) -> list[SetRequest]:
    """SetVariablesRequest.setVariableData to the device model's requests."""
    return [
        SetRequest(
            _component(item["component"]),
            _variable(item["variable"]),
            item["attribute_value"],
            item.get("attribute_type", "Actual"),
        )
        for item in raw
    ]


def _component_payload(key: ComponentKey) -> Json:
    out: Json = {"name": key.name}
    if key.instance is not None:
        out["instance"] = key.instance
    if key.evse_id is not None:
        out["evse"] = {"id": key.evse_id}
    return out


def _variable_payload(key: VariableKey) -> Json:
    out: Json = {"name": key.name}
    if key.instance is not None:
        out["instance"] = key.instance
    return out


def _attribute_result(res: GetResult | SetResult) -> Json:
    """The fields a Get- and a SetVariableResult share: status, attribute, component, variable."""
    return {
        "attribute_status": str(res.status),
        "attribute_type": res.request.attribute,
        "component": _component_payload(res.request.component),
        "variable": _variable_payload(res.request.variable),
    }


def get_variables_result(results: Sequence[GetResult]) -> call_result.GetVariables:
    """GetVariablesResponse, one result per request, in order."""
    items: list[Json] = []
    for res in results:
        item = _attribute_result(res)
        if res.value is not None:
            item["attribute_value"] = res.value
        items.append(item)
    return call_result.GetVariables(get_variable_result=items)


def set_variables_result(results: Sequence[SetResult]) -> call_result.SetVariables:
    """SetVariablesResponse, one result per request, in order."""
    items: list[Json] = []
    for res in results:
        item = _attribute_result(res)
        if res.reason is not None:
            item["attribute_status_info"] = {"reason_code": res.reason}
        items.append(item)
    return call_result.SetVariables(set_variable_result=items)


def id_token_from(raw: Mapping[str, Any]) -> IdToken:
    """IdTokenType dict to the station's IdToken."""
    return IdToken(raw["id_token"], raw["type"])


def status_info(reason: str) -> Json:
    """StatusInfoType with a reason code (at most 20 characters)."""
    return {"reason_code": reason[:20]}


def _report_item(var: Variable) -> Json:
    attribute: Json = {"type": "Actual", "mutability": str(var.mutability)}
    if var.mutability is not Mutability.WRITE_ONLY:
        attribute["value"] = var.value
    characteristics: Json = {"data_type": str(var.data_type), "supports_monitoring": False}
    if var.values_list:
        characteristics["values_list"] = ",".join(var.values_list)
    if var.min_limit is not None:
        characteristics["min_limit"] = var.min_limit
    if var.max_limit is not None:
        characteristics["max_limit"] = var.max_limit
    if var.component.name == "EVSE" and var.variable.name == "Power":
        characteristics["unit"] = "W"
    return {
        "component": _component_payload(var.component),
        "variable": _variable_payload(var.variable),
        "variable_attribute": [attribute],
        "variable_characteristics": characteristics,
    }


def notify_report_calls(
    *, request_id: int, now: datetime, variables: Sequence[Variable], per_message: int
) -> list[call.NotifyReport]:
    """NotifyReport pages of at most ``per_message`` variables, seqNo from 0, tbc on all but
    the last (write-only values are never reported)."""
    chunks = [variables[i : i + per_message] for i in range(0, len(variables), per_message)]
    return [
        call.NotifyReport(
            request_id=request_id,
            generated_at=format_timestamp(now),
            seq_no=n,
            report_data=[_report_item(v) for v in chunk],
            tbc=n < len(chunks) - 1,
        )
        for n, chunk in enumerate(chunks)
    ]


def security_event_call(*, now: datetime, kind: str, info: str | None = None) -> Any:
    """SecurityEventNotification (A04) of one of the spec's event types."""
    return call.SecurityEventNotification(
        type=kind, timestamp=format_timestamp(now), tech_info=info
    )


def _time(raw: Any) -> datetime | None:
    """An RFC 3339 time from the CSMS; one without an offset is taken as UTC."""
    if raw is None:
        return None
    moment = datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def as_time(raw: Any, field: str) -> datetime:
    """A required RFC 3339 time from the CSMS; ValueError naming ``field`` if it is none."""
    try:
        moment = _time(raw)
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"{field} {raw!r} is not a timestamp")
    return moment


def charging_profile_from(raw: Mapping[str, Any]) -> ChargingProfile:
    """ChargingProfileType dict to the station's ChargingProfile (the first schedule counts).

    Raises ValueError for an unknown purpose or kind, KeyError for a missing field.
    """
    schedule = raw["charging_schedule"][0]
    periods = tuple(
        SchedulePeriod(int(p["start_period"]), float(p["limit"]), p.get("number_phases"))
        for p in schedule["charging_schedule_period"]
    )
    return ChargingProfile(
        id=int(raw["id"]),
        stack_level=int(raw["stack_level"]),
        purpose=Purpose(raw["charging_profile_purpose"]),
        kind=Kind(raw["charging_profile_kind"]),
        schedule=Schedule(
            id=int(schedule.get("id", 0)),
            unit=str(schedule["charging_rate_unit"]),
            periods=periods,
            start=_time(schedule.get("start_schedule")),
            duration_s=schedule.get("duration"),
        ),
        transaction_id=raw.get("transaction_id"),
        recurrency=raw.get("recurrency_kind"),
        valid_from=_time(raw.get("valid_from")),
        valid_to=_time(raw.get("valid_to")),
    )


def charging_profile_payload(profile: ChargingProfile) -> Json:
    """The station's ChargingProfile back as a ChargingProfileType dict (for reports)."""
    schedule: Json = {
        "id": profile.schedule.id,
        "charging_rate_unit": profile.schedule.unit,
        "charging_schedule_period": [
            {"start_period": p.start_s, "limit": p.limit}
            | ({} if p.phases is None else {"number_phases": p.phases})
            for p in profile.schedule.periods
        ],
    }
    if profile.schedule.start is not None:
        schedule["start_schedule"] = format_timestamp(profile.schedule.start)
    if profile.schedule.duration_s is not None:
        schedule["duration"] = profile.schedule.duration_s
    out: Json = {
        "id": profile.id,
        "stack_level": profile.stack_level,
        "charging_profile_purpose": str(profile.purpose),
        "charging_profile_kind": str(profile.kind),
        "charging_schedule": [schedule],
    }
    if profile.transaction_id is not None:
        out["transaction_id"] = profile.transaction_id
    if profile.recurrency is not None:
        out["recurrency_kind"] = profile.recurrency
    for key, moment in (("valid_from", profile.valid_from), ("valid_to", profile.valid_to)):
        if moment is not None:
            out[key] = format_timestamp(moment)
    return out


def criteria_from(
    profile_id: int | None,
    raw: Mapping[str, Any] | None,
    *,
    evse_id: int | None = None,
) -> Criteria:
    """ClearChargingProfile / GetChargingProfiles selection to the station's Criteria."""
    raw = raw or {}
    ids = [profile_id] if profile_id is not None else list(raw.get("charging_profile_id") or [])
    purpose = raw.get("charging_profile_purpose")
    return Criteria(
        profile_ids=tuple(int(i) for i in ids),
        evse_id=raw.get("evse_id", evse_id),
        purpose=None if purpose is None else Purpose(purpose),
        stack_level=raw.get("stack_level"),
    )
