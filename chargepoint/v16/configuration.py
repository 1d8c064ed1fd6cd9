"""OCPP 1.6 configuration keys (GetConfiguration, ChangeConfiguration) over the device model.

A 1.6 key is another name for a device-model variable, so a ChangeConfiguration of
``MeterValueSampleInterval`` changes the very setting the session runner reads. Keys the
device model does not hold (``NumberOfConnectors``, ``SupportedFeatureProfiles``) are
read-only facts of the station. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chargepoint.device_model import (
    ComponentKey,
    DeviceModel,
    GetRequest,
    SetRequest,
    SetStatus,
    VariableKey,
)

# 1.6 key -> (component, variable) of the device model
KEY_MAP: dict[str, tuple[str, str]] = {
    "HeartbeatInterval": ("OCPPCommCtrlr", "HeartbeatInterval"),
    "MeterValueSampleInterval": ("SampledDataCtrlr", "TxUpdatedInterval"),
    "MeterValuesSampledData": ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    "StopTxnSampledData": ("SampledDataCtrlr", "TxEndedMeasurands"),
    "AuthorizeRemoteTxRequests": ("AuthCtrlr", "AuthorizeRemoteStart"),
}
SUPPORTED_FEATURE_PROFILES = "Core,RemoteTrigger,SmartCharging"
GET_CONFIGURATION_MAX_KEYS = 32


class ConfigurationStatus(StrEnum):
    """1.6 ConfigurationStatus."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    NOT_SUPPORTED = "NotSupported"


@dataclass(frozen=True)
class ConfigurationKey:
    """One entry of a GetConfiguration answer."""

    key: str
    readonly: bool
    value: str


class Configuration:
    """The 1.6 view of a station's settings."""

    def __init__(self, device_model: DeviceModel, *, connectors: int) -> None:
        self.device_model = device_model
        self.fixed = {
            "NumberOfConnectors": str(connectors),
            "SupportedFeatureProfiles": SUPPORTED_FEATURE_PROFILES,
            "GetConfigurationMaxKeys": str(GET_CONFIGURATION_MAX_KEYS),
            "ChargeProfileMaxStackLevel": "8",
        }

    def keys(self) -> list[str]:
        """Every key this station knows, in a stable order."""
        return [*KEY_MAP, *self.fixed]

    def get(self, wanted: list[str] | None) -> tuple[list[ConfigurationKey], list[str]]:
        """The known keys among ``wanted`` (all if None or empty) and the unknown ones."""
        names = wanted or self.keys()
        known: list[ConfigurationKey] = []
        unknown: list[str] = []
        for name in names:
            if name in self.fixed:
                known.append(ConfigurationKey(name, True, self.fixed[name]))
            elif name in KEY_MAP:
                component, variable = KEY_MAP[name]
                result = self.device_model.get(
                    GetRequest(ComponentKey(component), VariableKey(variable))
                )
                known.append(ConfigurationKey(name, False, result.value or ""))
            else:
                unknown.append(name)
        return known, unknown

    def change(self, key: str, value: str) -> ConfigurationStatus:
        """Apply one ChangeConfiguration; the device model checks the value."""
        if key in self.fixed:
            return ConfigurationStatus.REJECTED
        if key not in KEY_MAP:
            return ConfigurationStatus.NOT_SUPPORTED
        component, variable = KEY_MAP[key]
        result = self.device_model.set(
            SetRequest(ComponentKey(component), VariableKey(variable), value)
        )
        if result.status is SetStatus.ACCEPTED:
            return ConfigurationStatus.ACCEPTED
        return ConfigurationStatus.REJECTED
