"""The station's device model (OCPP 2.0.1 part B, Provisioning): components, variables, attributes.

A pure core: GetVariables/SetVariables decide per-variable statuses here, with no I/O.
Only the ``Actual`` attribute exists; values are kept as OCPP strings and checked against
the variable's data type, limits and value list on write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from chargepoint.local_list import ITEMS_PER_MESSAGE as LOCAL_LIST_ITEMS_PER_MESSAGE

ACTUAL = "Actual"


class Mutability(StrEnum):
    """Who may change a variable through SetVariables."""

    READ_ONLY = "ReadOnly"
    WRITE_ONLY = "WriteOnly"
    READ_WRITE = "ReadWrite"


class DataType(StrEnum):
    """The value formats the model checks on write."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    MEMBER_LIST = "MemberList"
    OPTION_LIST = "OptionList"


class GetStatus(StrEnum):
    """GetVariableStatusEnumType."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"


class SetStatus(StrEnum):
    """SetVariableStatusEnumType (RebootRequired is never needed by this station)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"


@dataclass(frozen=True)
class ComponentKey:
    """A component as OCPP names it: name, optional instance, optional EVSE."""

    name: str
    instance: str | None = None
    evse_id: int | None = None


@dataclass(frozen=True)
class VariableKey:
    """A variable of a component: name and optional instance."""

    name: str
    instance: str | None = None


@dataclass(frozen=True)
class Variable:
    """One variable with its Actual value and the rules for changing it."""

    component: ComponentKey
    variable: VariableKey
    value: str
    data_type: DataType = DataType.STRING
    mutability: Mutability = Mutability.READ_WRITE
    min_limit: int | None = None
    max_limit: int | None = None
    values_list: tuple[str, ...] = ()
    max_length: int = 2500


@dataclass(frozen=True)
class GetRequest:
    """One element of GetVariablesRequest.getVariableData."""

    component: ComponentKey
    variable: VariableKey
    attribute: str = ACTUAL


@dataclass(frozen=True)
class GetResult:
    """One element of GetVariablesResponse.getVariableResult."""

    request: GetRequest
    status: GetStatus
    value: str | None = None


@dataclass(frozen=True)
class SetRequest:
    """One element of SetVariablesRequest.setVariableData."""

    component: ComponentKey
    variable: VariableKey
    value: str
    attribute: str = ACTUAL


@dataclass(frozen=True)
class SetResult:
    """One element of SetVariablesResponse.setVariableResult; ``reason`` explains a refusal."""

    request: SetRequest
    status: SetStatus
    reason: str | None = None


class DeviceModel:
    """All variables of one station, addressed by (component, variable)."""

    def __init__(self, variables: Iterable[Variable]) -> None:
        self._vars: dict[tuple[ComponentKey, VariableKey], Variable] = {}
        for var in variables:
            self._vars[(var.component, var.variable)] = var
        self._components = {key[0] for key in self._vars}

    def get(self, request: GetRequest) -> GetResult:
        """Answer one GetVariables element."""
        found = self._lookup(request.component, request.variable)
        if isinstance(found, GetStatus):
            return GetResult(request, found)
        if request.attribute != ACTUAL:
            return GetResult(request, GetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE)
        if found.mutability is Mutability.WRITE_ONLY:
            return GetResult(request, GetStatus.REJECTED)
        return GetResult(request, GetStatus.ACCEPTED, found.value)

    def set(self, request: SetRequest) -> SetResult:
        """Apply one SetVariables element, or say why not."""
        found = self._lookup(request.component, request.variable)
        if isinstance(found, GetStatus):
            return SetResult(request, SetStatus(found.value))
        if request.attribute != ACTUAL:
            return SetResult(request, SetStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE)
        if found.mutability is Mutability.READ_ONLY:
            return SetResult(request, SetStatus.REJECTED, "ReadOnly")
        problem = check_value(found, request.value)
        if problem is not None:
            return SetResult(request, SetStatus.REJECTED, problem)
        self._vars[(found.component, found.variable)] = replace(found, value=request.value)
        return SetResult(request, SetStatus.ACCEPTED)

    def report(self, base: str) -> list[Variable] | None:
        """The variables a GetBaseReport of ``base`` lists (B07), or None for an unknown base.

        FullInventory: everything; ConfigurationInventory: what SetVariables may change;
        SummaryInventory: the availability of the station and its EVSEs.
        """
        everything = sorted(
            self._vars.values(),
            key=lambda v: (v.component.name, v.component.evse_id or 0, v.variable.name),
        )
        if base == "FullInventory":
            return everything
        if base == "ConfigurationInventory":
            return [v for v in everything if v.mutability is not Mutability.READ_ONLY]
        if base == "SummaryInventory":
            return [v for v in everything if v.variable.name == "AvailabilityState"]
        return None

    def read(self, component: str, variable: str, *, evse_id: int | None = None) -> str:
        """The station's own read of a value (write-only ones included); KeyError if absent."""
        key = (ComponentKey(component, None, evse_id), VariableKey(variable))
        return self._vars[key].value

    def read_int(self, component: str, variable: str) -> int:
        """A value of an integer variable."""
        return int(self.read(component, variable))

    def read_list(self, component: str, variable: str) -> tuple[str, ...]:
        """The members of a list variable, in order, without empties."""
        return tuple(item for item in self.read(component, variable).split(",") if item)

    def write(
        self, component: str, variable: str, value: str, *, evse_id: int | None = None
    ) -> None:
        """The station's own write, bypassing mutability (e.g. AvailabilityState, boot interval)."""
        key = (ComponentKey(component, None, evse_id), VariableKey(variable))
        self._vars[key] = replace(self._vars[key], value=value)

    def _lookup(self, component: ComponentKey, variable: VariableKey) -> Variable | GetStatus:
        if component not in self._components:
            return GetStatus.UNKNOWN_COMPONENT
        found = self._vars.get((component, variable))
        return GetStatus.UNKNOWN_VARIABLE if found is None else found


def check_value(var: Variable, value: str) -> str | None:
    """None if ``value`` fits the variable, else a short reason code (<= 20 chars for OCPP)."""
    if len(value) > var.max_length:
        return "TooLong"
    if var.data_type is DataType.INTEGER:
        try:
            number = int(value)
        except ValueError:
            return "NotAnInteger"
        if var.min_limit is not None and number < var.min_limit:
            return "BelowMinimum"
        if var.max_limit is not None and number > var.max_limit:
            return "AboveMaximum"
    elif var.data_type is DataType.BOOLEAN:
        if value not in ("true", "false"):
            return "NotABoolean"
    elif var.data_type is DataType.OPTION_LIST:
        if value not in var.values_list:
            return "NotAnOption"
    elif var.data_type is DataType.MEMBER_LIST:
        members = value.split(",") if value else []
        if any(member not in var.values_list for member in members):
            return "UnknownMember"
    return None


MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Power.Active.Export",
    "SoC",
)


# OCPPCommCtrlr's reconnect back-off (chargepoint.backoff), in whole seconds
RETRY_VARIABLES = ("RetryBackOffWaitMinimum", "RetryBackOffRandomRange", "RetryBackOffRepeatTimes")


def default_variables(
    *,
    station_id: str,
    evse_count: int,
    evse_power_w: int | None = None,
    heartbeat_interval: int = 300,
    tx_updated_interval: int = 60,
    aligned_interval: int = 900,
    retry_backoff: tuple[int, int, int] = (3, 10, 3),
) -> list[Variable]:
    """The variables this station implements, with their factory values."""
    ro = Mutability.READ_ONLY
    integer, boolean = DataType.INTEGER, DataType.BOOLEAN
    members = DataType.MEMBER_LIST

    def var(
        component: str,
        name: str,
        value: str,
        *,
        data_type: DataType = DataType.STRING,
        mutability: Mutability = Mutability.READ_WRITE,
        min_limit: int | None = None,
        values_list: tuple[str, ...] = (),
        max_length: int = 2500,
    ) -> Variable:
        return Variable(
            ComponentKey(component),
            VariableKey(name),
            value,
            data_type=data_type,
            mutability=mutability,
            min_limit=min_limit,
            values_list=values_list,
            max_length=max_length,
        )

    every = ",".join(MEASURANDS)  # registers, power both ways (V2G), SoC
    variables = [
        var(
            "OCPPCommCtrlr",
            "HeartbeatInterval",
            str(heartbeat_interval),
            data_type=integer,
            min_limit=1,
        ),
        *(
            var("OCPPCommCtrlr", name, str(value), data_type=integer, min_limit=0)
            for name, value in zip(RETRY_VARIABLES, retry_backoff, strict=True)
        ),
        var(
            "SampledDataCtrlr",
            "TxUpdatedInterval",
            str(tx_updated_interval),
            data_type=integer,
            min_limit=1,
        ),
        var(
            "SampledDataCtrlr",
            "TxUpdatedMeasurands",
            every,
            data_type=members,
            values_list=MEASURANDS,
        ),
        var(
            "SampledDataCtrlr",
            "TxStartedMeasurands",
            every,
            data_type=members,
            values_list=MEASURANDS,
        ),
        var(
            "SampledDataCtrlr",
            "TxEndedMeasurands",
            every,
            data_type=members,
            values_list=MEASURANDS,
        ),
        var(
            "AlignedDataCtrlr",
            "Interval",  # signed Intermediate readings at these instants (0: off)
            str(aligned_interval),
            data_type=integer,
            min_limit=0,
        ),
        var(
            "AlignedDataCtrlr",
            "Measurands",
            every,
            data_type=members,
            values_list=MEASURANDS,
        ),
        var("AuthCtrlr", "Enabled", "true", data_type=boolean),
        var("AuthCtrlr", "AuthorizeRemoteStart", "false", data_type=boolean),
        var(
            "TxCtrlr",
            "TxStartPoint",
            "Authorized",
            data_type=members,
            mutability=ro,
            values_list=("Authorized", "PowerPathClosed", "EVConnected"),
        ),
        var(
            "TxCtrlr",
            "TxStopPoint",
            "EVConnected,Authorized",
            data_type=members,
            mutability=ro,
            values_list=("Authorized", "PowerPathClosed", "EVConnected"),
        ),
        var("SecurityCtrlr", "Identity", station_id, mutability=ro, max_length=48),
        var("SecurityCtrlr", "SecurityProfile", "1", data_type=integer, mutability=ro),
        var(
            "SecurityCtrlr",
            "BasicAuthPassword",
            "",
            mutability=Mutability.WRITE_ONLY,
            max_length=40,
        ),
        var("DeviceDataCtrlr", "ItemsPerMessage", "32", data_type=integer, mutability=ro),
        var("LocalAuthListCtrlr", "Enabled", "true", data_type=boolean),
        var("LocalAuthListCtrlr", "Entries", "0", data_type=integer, mutability=ro),
        var(
            "LocalAuthListCtrlr",
            "ItemsPerMessage",
            str(LOCAL_LIST_ITEMS_PER_MESSAGE),
            data_type=integer,
            mutability=ro,
        ),
        var("ChargingStation", "AvailabilityState", "Available", mutability=ro),
    ]
    for evse_id in range(1, evse_count + 1):
        variables.append(
            Variable(
                ComponentKey("EVSE", None, evse_id),
                VariableKey("AvailabilityState"),
                "Available",
                mutability=ro,
            )
        )
        if evse_power_w is not None:  # its rating: the Power variable's maxLimit (W)
            variables.append(
                Variable(
                    ComponentKey("EVSE", None, evse_id),
                    VariableKey("Power"),
                    "0",
                    data_type=integer,
                    mutability=ro,
                    max_limit=evse_power_w,
                )
            )
    return variables
