"""CSMS configuration: a YAML file validated into a frozen dataclass at start-up.

A bad file stops start-up with an error naming the file, the key and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from csms.errors import ConfigError
from csms.store import retention
from csms.store.engine import is_postgresql_url
from ledger.duration import parse_duration


@dataclass(frozen=True, slots=True)
class CsmsConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    heartbeat_interval: int = 300
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 5.0
    call_timeout: float = 30.0
    max_frame_bytes: int = 262_144
    validate_responses: bool = True
    # security profile 1: Basic auth over ws://; 2: TLS + Basic auth; 3: mutual TLS
    security_profile: int = 1
    tls_cert: str = ""  # PEM server certificate (profiles 2 and 3)
    tls_key: str = ""  # PEM private key of tls_cert
    tls_ca: str = ""  # PEM CA that issues station certificates (profile 3)
    max_connections: int = 10_000  # live stations; the next handshake is answered 503
    rate_limit_per_s: float = 20.0  # frames per second a station is served at, sustained
    rate_limit_burst: int = 100  # frames served at once before throttling sets in
    max_pending_frames: int = 32  # unanswered frames a station may have; more: "rate limited"
    rate_limit_disconnect_after: int = 100  # "rate limited" frames in a row before closing
    max_sampled_values: int = 200  # sampled values in one message; more: refused or truncated
    max_samples_per_transaction: int = 100_000  # samples stored per transaction; likewise
    max_events_per_transaction: int = 20_000  # events stored per transaction; likewise
    # the newest rows kept per station of what it reports outside transactions (older ones
    # are removed as new ones come: csms.store.retention); README, Configuration
    keep_station_events: int = retention.KEEP_STATION_EVENTS
    keep_meter_values: int = retention.KEEP_METER_VALUES  # samples not tied to a transaction
    keep_security_events: int = retention.KEEP_SECURITY_EVENTS
    keep_reports: int = retention.KEEP_REPORTS  # NotifyReport messages
    keep_charging_needs: int = retention.KEEP_CHARGING_NEEDS
    keep_connection_log: int = retention.KEEP_CONNECTION_LOG
    # connectors whose status a station keeps; a status for one more is not stored
    max_connectors_per_station: int = retention.MAX_CONNECTORS
    # settlement
    operator: str = "operator-1"  # the operator id written into every settlement
    tariff_file: str = ""  # YAML tariff; default DATA_DIR/tariff.yaml (written if missing)
    genesis: str = ""  # genesis of running validators; empty: an embedded set of 4
    csms_key: str = ""  # Ed25519 settlement key; default DATA_DIR/ledger/keys/csms.key
    # embedded validators: an empty block after this many seconds without one (0: never;
    # YAML may say 90s, 15m, 1h)
    ledger_max_idle_interval: float = 0.0
    # where the validators of ``genesis`` listen (ws://HOST:PORT); empty: the url of each
    # validator in the genesis file, else the homes beside it
    validators: tuple[str, ...] = ()
    evidence_slack_seconds: int = 0  # how far a signed reading may sit from a tariff boundary
    # after a station's boot: ask what its EVSEs can do (csms.evse_discovery)
    evse_discovery: bool = True
    evse_discovery_per_s: float = 5.0  # stations asked per second at most (a boot storm waits)
    max_report_parts: int = 64  # NotifyReport parts kept per report; later ones acknowledged only
    max_station_power_w: int = 350_000  # plausibility: no settlement beyond this power (+10%)
    clock_tolerance_seconds: int = 300  # a session ending further ahead of the CSMS is flagged
    # dispatch (V2G)
    dispatch_interval: float = 2.0  # seconds between passes over the running sessions
    dispatch_concurrency: int = 32  # sessions a pass decides at once
    dispatch_call_timeout: float = 10.0  # seconds a dispatch call may take, queueing included
    export_threshold: int = 250_000  # discharge when the export price (micro/kWh) is above
    charge_w: int = 11_000
    discharge_w: int = 7_000
    reserve_soc_pct: int = 30  # never ask an EV at or below this SoC to discharge
    # imported stations' passwords hashed (scrypt) per second at most, in the background after
    # their first handshake (csms.pending_hash)
    pending_hash_per_s: float = 2.0

    # where the store lives: empty for DATA_DIR/csms.sqlite, or a postgresql:// URL (several
    # CSMS processes may share one PostgreSQL database; keys stay in each DATA_DIR)
    database: str = ""
    # with a shared PostgreSQL database (csms.cluster): this process's name (empty:
    # HOST:PID), how long a station's lease outlives a process that stopped renewing it, and
    # how many calls to stations on other processes may wait at once
    process_name: str = ""
    station_lease_seconds: float = 15.0
    max_remote_calls: int = 64
    # how long a settlement claimed by a process that died waits before another takes it over
    outbox_lease_seconds: float = 20.0
    # operator review: dashboard, JSON API and /metrics (served by ``v2g csms``)
    http_host: str = "127.0.0.1"
    http_port: int = 8080  # 0 picks a free port
    http_max_body_bytes: int = 65_536  # larger request bodies are answered 413

    def with_overrides(self, **overrides: Any) -> CsmsConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_POSITIVE = {
    "heartbeat_interval",
    "dispatch_interval",
    "dispatch_concurrency",
    "dispatch_call_timeout",
    "charge_w",
    "max_connections",
    "rate_limit_per_s",
    "rate_limit_burst",
    "max_pending_frames",
    "max_sampled_values",
    "max_samples_per_transaction",
    "max_report_parts",
    "evse_discovery_per_s",
    "max_events_per_transaction",
    "keep_station_events",
    "keep_meter_values",
    "keep_security_events",
    "keep_reports",
    "keep_charging_needs",
    "keep_connection_log",
    "max_connectors_per_station",
    "max_station_power_w",
    "http_max_body_bytes",
    "rate_limit_disconnect_after",
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "call_timeout",
    "station_lease_seconds",
    "max_remote_calls",
    "outbox_lease_seconds",
    "pending_hash_per_s",
}


_DURATIONS = {"ledger_max_idle_interval"}
MAX_PENDING_HASH_PER_S = 100


def process_name_problem(name: str) -> str | None:
    if not name or len(name) > 200 or not name.isprintable():
        return f"expected a printable name of 1 to 200 characters, got {name!r}"
    return None


def _urls(path: Path, key: str, value: Any) -> tuple[str, ...]:
    what = "a list of validator URLs (ws://HOST:PORT)"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{path}: key {key!r}: expected {what}, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.startswith(("ws://", "wss://")):
            raise ConfigError(f"{path}: key {key!r}: expected {what}, got {item!r}")
    return tuple(value)


def _expect(path: Path, key: str, value: Any, kind: type, what: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: key {key!r}: expected {what}, got {value!r}")
    return value


def load_config(path: Path | str | None) -> CsmsConfig:
    """Read a config file (None gives the defaults)."""
    if path is None:
        return CsmsConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return CsmsConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    known = {f.name: f for f in fields(CsmsConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{path}: unknown key {key!r}: expected one of {', '.join(sorted(known))}"
            )
        if key == "validators":
            values[key] = _urls(path, key, value)
            continue
        if key in _DURATIONS:
            try:
                values[key] = parse_duration(value)
            except ValueError as exc:
                raise ConfigError(f"{path}: key {key!r}: {exc}") from None
            continue
        default = getattr(CsmsConfig(), key)
        kind = type(default)
        what = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]
        value = _expect(path, key, value, kind, what)
        if key in _POSITIVE and value <= 0:
            raise ConfigError(f"{path}: key {key!r}: expected a positive number, got {value!r}")
        if key in ("port", "http_port") and not 0 <= value <= 65535:
            raise ConfigError(f"{path}: key {key!r}: expected 0..65535, got {value!r}")
        if key == "http_host" and not value:
            raise ConfigError(f"{path}: key 'http_host': expected an address to listen on")
        if key == "reserve_soc_pct" and not 0 <= value <= 100:
            raise ConfigError(f"{path}: key 'reserve_soc_pct': expected 0..100, got {value!r}")
        if (
            key in ("discharge_w", "evidence_slack_seconds", "export_threshold")
            or key == "clock_tolerance_seconds"
        ) and value < 0:
            raise ConfigError(f"{path}: key {key!r}: expected zero or more, got {value!r}")
        if key == "pending_hash_per_s" and value > MAX_PENDING_HASH_PER_S:
            raise ConfigError(
                f"{path}: key 'pending_hash_per_s': expected at most {MAX_PENDING_HASH_PER_S}"
                f" (a hash takes ~50-90 ms of a core), got {value!r}"
            )
        if key == "max_frame_bytes" and value < 1024:
            raise ConfigError(f"{path}: key 'max_frame_bytes': expected at least 1024")
        if key == "security_profile" and value not in (1, 2, 3):
            raise ConfigError(f"{path}: key 'security_profile': expected 1, 2 or 3, got {value!r}")
        if key == "database" and value and not is_postgresql_url(value):
            raise ConfigError(
                f"{path}: key 'database': expected a postgresql://USER@HOST/DATABASE URL"
                f" (leave it out for DATA_DIR/csms.sqlite), got {value!r}"
            )
        if key == "process_name" and process_name_problem(value):
            raise ConfigError(f"{path}: key 'process_name': {process_name_problem(value)}")
        if key.startswith("tls_") and value:
            value = str((path.parent / value).resolve())
        values[key] = value
    config = CsmsConfig(**values)
    check_security(config, str(path))
    return config


def check_security(config: CsmsConfig, source: str = "configuration") -> None:
    """Profiles 2 and 3 need a certificate and key, profile 3 also the station CA."""
    needed = {1: (), 2: ("tls_cert", "tls_key"), 3: ("tls_cert", "tls_key", "tls_ca")}
    if config.security_profile not in needed:
        raise ConfigError(f"{source}: key 'security_profile': expected 1, 2 or 3")
    for key in needed[config.security_profile]:
        if not getattr(config, key):
            raise ConfigError(
                f"{source}: key {key!r}: security profile {config.security_profile}"
                " expected a PEM file"
            )
    if config.security_profile == 1 and (config.tls_cert or config.tls_ca):
        raise ConfigError(
            f"{source}: key 'security_profile': expected 2 or 3 when TLS files are given"
        )
