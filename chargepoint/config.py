"""The station's settings, checked once at start into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from ocpp.v201.enums import IdTokenEnumType

from chargepoint.backoff import Backoff
from chargepoint.connection import TlsFiles
from chargepoint.errors import ConfigError
from chargepoint.transaction import IdToken

ID_TOKEN_TYPES = tuple(t.value for t in IdTokenEnumType)  # OCPP 2.x IdTokenEnumType

OCPP_VERSIONS = ("1.6", "2.0.1", "2.1")  # --ocpp; each offers its own websocket subprotocol

DEFAULT_ID_TOKEN = IdToken("04E1A2B3C4D5E6", "ISO14443")


@dataclass(frozen=True)
class StationConfig:
    """Everything a station run needs; times are wall seconds unless named ``station``."""

    url: str
    station_id: str
    fallback_urls: tuple[str, ...] = ()  # more CSMS processes, tried in turn after ``url``
    password: str | None = None
    tls: TlsFiles | None = None  # wss:// CA and client certificate (security profiles 2, 3)
    evses: int = 1
    evse_power_w: int | None = None  # each EVSE's rating (device model EVSE.Power maxLimit)
    sessions: int = 0
    exit_when_done: bool = False
    id_token: IdToken = DEFAULT_ID_TOKEN
    session_seconds: float = 3600.0  # station seconds per session
    speed: float = 1.0  # station seconds per wall second
    tx_updated_interval: int = 60  # station seconds (SampledDataCtrlr.TxUpdatedInterval)
    aligned_interval: int = 900  # station seconds (AlignedDataCtrlr.Interval; 0: off)
    connect_timeout: float = 30.0  # give up after this long without a first connection (--exit)
    response_timeout: float = 30.0
    open_timeout: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    vendor: str = "v2g-bridge"
    model: str = "SimStation"
    ocpp_version: str = "2.0.1"  # one of OCPP_VERSIONS
    # how long an EV whose NotifyEVChargingNeeds was Accepted waits for its schedule (K15:
    # "a schedule will be provided") before it charges at its own limit; 0: it does not wait
    schedule_wait: float = 0.0
    # check each call and its answer against the OCPP schemas here too (the CSMS checks what
    # it receives either way); off for fleets of many simulated stations in one process,
    # where the checks cost more CPU than the rest of a station's work
    check_schemas: bool = True

    def __post_init__(self) -> None:
        if not self.station_id or len(self.station_id) > 48 or "/" in self.station_id:
            raise ConfigError("station id must be 1-48 characters without '/'")
        if self.evses < 1:
            raise ConfigError("--evses must be at least 1")
        if self.evse_power_w is not None and self.evse_power_w < 1:
            raise ConfigError("--evse-power-w must be at least 1")
        if self.sessions < 0:
            raise ConfigError("--sessions must not be negative")
        if self.exit_when_done and self.sessions < 1:
            raise ConfigError("--exit needs --sessions K with K >= 1")
        if self.session_seconds <= 0 or self.speed <= 0:
            raise ConfigError("--session-seconds and --speed must be positive")
        if self.tx_updated_interval < 1:
            raise ConfigError("the meter interval must be at least 1 s")
        if self.aligned_interval < 0:
            raise ConfigError("the aligned interval must not be negative")
        if self.schedule_wait < 0:
            raise ConfigError("--schedule-wait must not be negative")
        if self.ocpp_version not in OCPP_VERSIONS:
            raise ConfigError(f"--ocpp must be one of {', '.join(OCPP_VERSIONS)}")
        if self.id_token.type not in ID_TOKEN_TYPES:
            raise ConfigError(f"idToken type must be one of {', '.join(ID_TOKEN_TYPES)}")
        if not self.id_token.id_token or len(self.id_token.id_token) > 36:
            raise ConfigError("idToken must be 1-36 characters")
        if self.ocpp_version == "1.6" and len(self.id_token.id_token) > 20:
            raise ConfigError("an OCPP 1.6 idTag is at most 20 characters")
