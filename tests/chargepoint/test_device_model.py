from __future__ import annotations

from chargepoint.device_model import (
    ComponentKey,
    DeviceModel,
    GetRequest,
    GetStatus,
    SetRequest,
    SetStatus,
    VariableKey,
    default_variables,
)


def model() -> DeviceModel:
    return DeviceModel(default_variables(station_id="CP1", evse_count=2, tx_updated_interval=60))


def get(dm: DeviceModel, comp: str, var: str, evse: int | None = None, attr: str = "Actual"):
    return dm.get(GetRequest(ComponentKey(comp, None, evse), VariableKey(var), attr))


def put(dm: DeviceModel, comp: str, var: str, value: str, attr: str = "Actual"):
    return dm.set(SetRequest(ComponentKey(comp), VariableKey(var), value, attr))


def test_required_variables_are_readable() -> None:
    dm = model()
    for comp, var in [
        ("SampledDataCtrlr", "TxUpdatedInterval"),
        ("SampledDataCtrlr", "TxUpdatedMeasurands"),
        ("OCPPCommCtrlr", "HeartbeatInterval"),
    ]:
        result = get(dm, comp, var)
        assert result.status is GetStatus.ACCEPTED
        assert result.value
    assert get(dm, "SampledDataCtrlr", "TxUpdatedInterval").value == "60"
    assert "Energy.Active.Import.Register" in dm.read_list(
        "SampledDataCtrlr", "TxUpdatedMeasurands"
    )


def test_unknown_component_and_unknown_variable_are_told_apart() -> None:
    dm = model()
    assert get(dm, "NoSuchCtrlr", "HeartbeatInterval").status is GetStatus.UNKNOWN_COMPONENT
    assert get(dm, "OCPPCommCtrlr", "NoSuchVariable").status is GetStatus.UNKNOWN_VARIABLE
    assert put(dm, "NoSuchCtrlr", "X", "1").status is SetStatus.UNKNOWN_COMPONENT
    assert put(dm, "OCPPCommCtrlr", "X", "1").status is SetStatus.UNKNOWN_VARIABLE


def test_set_changes_value_and_get_sees_it() -> None:
    dm = model()
    assert put(dm, "SampledDataCtrlr", "TxUpdatedInterval", "15").status is SetStatus.ACCEPTED
    assert get(dm, "SampledDataCtrlr", "TxUpdatedInterval").value == "15"
    assert dm.read_int("SampledDataCtrlr", "TxUpdatedInterval") == 15


def test_read_only_is_rejected_and_unchanged() -> None:
    dm = model()
    result = put(dm, "SecurityCtrlr", "Identity", "OTHER")
    assert result.status is SetStatus.REJECTED
    assert get(dm, "SecurityCtrlr", "Identity").value == "CP1"


def test_invalid_values_are_rejected_with_a_reason() -> None:
    dm = model()
    for value, reason in [("abc", "NotAnInteger"), ("0", "BelowMinimum"), ("-5", "BelowMinimum")]:
        result = put(dm, "OCPPCommCtrlr", "HeartbeatInterval", value)
        assert result.status is SetStatus.REJECTED
        assert result.reason == reason
    assert put(dm, "AuthCtrlr", "Enabled", "True").status is SetStatus.REJECTED
    bad_list = put(dm, "SampledDataCtrlr", "TxUpdatedMeasurands", "Energy.Active.Import.Register,X")
    assert bad_list.status is SetStatus.REJECTED
    assert dm.read_int("OCPPCommCtrlr", "HeartbeatInterval") == 300


def test_member_list_accepts_known_members() -> None:
    dm = model()
    assert put(dm, "SampledDataCtrlr", "TxUpdatedMeasurands", "SoC").status is SetStatus.ACCEPTED
    assert dm.read_list("SampledDataCtrlr", "TxUpdatedMeasurands") == ("SoC",)


def test_write_only_is_settable_not_readable() -> None:
    dm = model()
    assert put(dm, "SecurityCtrlr", "BasicAuthPassword", "s3cret-pass").status is SetStatus.ACCEPTED
    assert get(dm, "SecurityCtrlr", "BasicAuthPassword").status is GetStatus.REJECTED
    assert dm.read("SecurityCtrlr", "BasicAuthPassword") == "s3cret-pass"


def test_only_actual_attribute_is_supported() -> None:
    dm = model()
    status = get(dm, "OCPPCommCtrlr", "HeartbeatInterval", attr="Target").status
    assert status is GetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE
    result = put(dm, "OCPPCommCtrlr", "HeartbeatInterval", "10", attr="MaxSet")
    assert result.status is SetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE
    assert dm.read_int("OCPPCommCtrlr", "HeartbeatInterval") == 300


def test_evse_components_are_addressed_by_evse_id() -> None:
    dm = model()
    assert get(dm, "EVSE", "AvailabilityState", evse=2).status is GetStatus.ACCEPTED
    assert get(dm, "EVSE", "AvailabilityState", evse=3).status is GetStatus.UNKNOWN_COMPONENT
    dm.write("EVSE", "AvailabilityState", "Unavailable", evse_id=2)
    assert get(dm, "EVSE", "AvailabilityState", evse=2).value == "Unavailable"
    assert get(dm, "EVSE", "AvailabilityState", evse=1).value == "Available"


def test_base_reports_select_the_right_variables() -> None:
    dm = model()
    full = dm.report("FullInventory")
    config = dm.report("ConfigurationInventory")
    summary = dm.report("SummaryInventory")
    assert full is not None and config is not None and summary is not None
    names = {(v.component.name, v.variable.name) for v in full}
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in names
    assert ("SecurityCtrlr", "Identity") in names
    assert all(v.mutability.value != "ReadOnly" for v in config)
    assert ("SampledDataCtrlr", "TxUpdatedInterval") in {
        (v.component.name, v.variable.name) for v in config
    }
    assert {v.variable.name for v in summary} == {"AvailabilityState"}
    assert {v.component.evse_id for v in summary} == {None, 1, 2}
    assert dm.report("NoSuchInventory") is None
