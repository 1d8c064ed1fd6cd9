"""1.6 configuration keys are views of the device model the session runner reads."""

from __future__ import annotations

import pytest

from chargepoint.config import StationConfig
from chargepoint.device_model import DeviceModel, default_variables
from chargepoint.errors import ConfigError
from chargepoint.transaction import IdToken
from chargepoint.v16.configuration import KEY_MAP, Configuration, ConfigurationStatus


def configuration(connectors: int = 2) -> Configuration:
    model = DeviceModel(default_variables(station_id="CP1", evse_count=connectors))
    return Configuration(model, connectors=connectors)


def test_all_keys_with_values_and_readonly_flags() -> None:
    known, unknown = configuration().get(None)
    by_key = {k.key: k for k in known}
    assert unknown == []
    assert set(KEY_MAP) <= set(by_key)
    assert by_key["NumberOfConnectors"].value == "2" and by_key["NumberOfConnectors"].readonly
    assert not by_key["HeartbeatInterval"].readonly
    assert "Core" in by_key["SupportedFeatureProfiles"].value.split(",")


def test_unknown_keys_are_listed_apart_in_request_order() -> None:
    known, unknown = configuration().get(["Nope", "HeartbeatInterval", "AlsoNope"])
    assert [k.key for k in known] == ["HeartbeatInterval"]
    assert unknown == ["Nope", "AlsoNope"]


def test_change_reaches_the_device_model_variable_the_runner_reads() -> None:
    config = configuration()
    assert config.change("MeterValueSampleInterval", "120") is ConfigurationStatus.ACCEPTED
    assert config.device_model.read_int("SampledDataCtrlr", "TxUpdatedInterval") == 120
    assert config.change("AuthorizeRemoteTxRequests", "true") is ConfigurationStatus.ACCEPTED
    assert config.device_model.read("AuthCtrlr", "AuthorizeRemoteStart") == "true"
    known, _ = config.get(["MeterValueSampleInterval"])
    assert known[0].value == "120"


def test_bad_values_read_only_and_unknown_keys_are_refused() -> None:
    config = configuration()
    assert config.change("HeartbeatInterval", "0") is ConfigurationStatus.REJECTED  # min 1
    assert config.change("HeartbeatInterval", "soon") is ConfigurationStatus.REJECTED
    assert (
        config.change("MeterValuesSampledData", "Bogus.Measurand") is ConfigurationStatus.REJECTED
    )
    assert config.change("NumberOfConnectors", "4") is ConfigurationStatus.REJECTED
    assert config.change("NoSuchKey", "1") is ConfigurationStatus.NOT_SUPPORTED
    assert config.device_model.read_int("OCPPCommCtrlr", "HeartbeatInterval") != 0


def test_a_16_id_tag_longer_than_20_and_an_unknown_version_are_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="20 characters"):
        StationConfig(
            url="ws://h/ocpp", station_id="CP1", ocpp_version="1.6", id_token=IdToken("X" * 21)
        )
    StationConfig(
        url="ws://h/ocpp", station_id="CP1", ocpp_version="2.1", id_token=IdToken("X" * 21)
    )
    with pytest.raises(ConfigError, match="--ocpp"):
        StationConfig(url="ws://h/ocpp", station_id="CP1", ocpp_version="1.5")
