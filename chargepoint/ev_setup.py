"""Builds the EV-and-signing-meter sources of a station from options (the V2G station mode).

``v2g chargepoint --meter-key FILE`` and in-process callers use this: one meter key per
station (created 0600 if missing, its public PEM written beside it as ``FILE.pub.pem`` for
``v2g stations add --meter-key``), one signing meter per EVSE, and a fresh EV for every
session whose parameters come from :class:`EvOptions`, optionally varied by a seeded random
generator so that runs are reproducible.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.errors import ConfigError
from chargepoint.ev import Ev, EvSpec
from chargepoint.ev_meter import EvFactory, EvMeter
from chargepoint.meter import (
    Meter,
    MeterInfo,
    create_meter_key,
    load_meter_key,
    public_key_ocmf,
    public_key_pem,
)

LOG = logging.getLogger(__name__)
_PARKED = datetime(2000, 1, 1, tzinfo=UTC)  # the idle EV before the first session


@dataclass(frozen=True)
class EvOptions:
    """The EV that arrives for each session; ``seed`` varies arrival SoC and battery size."""

    battery_kwh: float = 60.0
    soc_pct: float = 40.0  # at arrival
    reserve_soc_pct: int = 20  # never discharged below
    target_soc_pct: int = 80  # wanted at departure (arrival + the session length)
    max_charge_kw: float = 11.0
    max_discharge_kw: float = 7.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.battery_kwh <= 0:
            raise ConfigError("--battery-kwh must be positive")
        if self.max_charge_kw < 0 or self.max_discharge_kw < 0:
            raise ConfigError("--max-charge-kw and --max-discharge-kw must not be negative")
        for name, value in (
            ("--soc", self.soc_pct),
            ("--reserve-soc", self.reserve_soc_pct),
            ("--target-soc", self.target_soc_pct),
        ):
            if not 0 <= value <= 100:
                raise ConfigError(f"{name} must lie in 0..100")


def public_key_path(key_path: Path) -> Path:
    """Where the public PEM of a meter key file is written: ``FILE.pub.pem``."""
    return key_path.with_name(key_path.name + ".pub.pem")


def ensure_meter_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load the meter key at ``path``, creating it (0600) if missing; write ``FILE.pub.pem``."""
    if path.exists():
        key = load_meter_key(path)
    else:
        try:
            key = create_meter_key(path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot create meter key: {exc.strerror}") from exc
        LOG.info("created meter key %s", path)
    public = public_key_path(path)
    try:
        public.write_bytes(public_key_pem(key))
    except OSError as exc:
        raise ConfigError(f"{public}: cannot write the public key: {exc.strerror}") from exc
    return key


def ev_factory(
    options: EvOptions, *, stay_seconds: float, rand: random.Random | None = None
) -> EvFactory:
    """A maker of fresh EVs arriving at a given instant and staying ``stay_seconds``."""
    if rand is None and options.seed is not None:
        rand = random.Random(options.seed)

    def new_ev(at: datetime) -> Ev:
        battery, soc = options.battery_kwh, options.soc_pct
        if rand is not None:  # +-20 % battery, +-15 points of arrival SoC, within 0..100
            battery *= rand.uniform(0.8, 1.2)
            soc = min(100.0, max(0.0, soc + rand.uniform(-15, 15)))
        spec = EvSpec(
            capacity_wh=round(battery * 1000),
            reserve_soc_pct=options.reserve_soc_pct,
            max_charge_w=round(options.max_charge_kw * 1000),
            max_discharge_w=round(options.max_discharge_kw * 1000),
            departure=at + timedelta(seconds=stay_seconds),
            target_soc_pct=options.target_soc_pct,
        )
        LOG.debug("EV arrives at %s: %.0f Wh, SoC %.1f %%", at.isoformat(), battery * 1000, soc)
        return Ev(spec, soc_pct=soc, at=at)

    return new_ev


def ev_meters(
    key: ec.EllipticCurvePrivateKey,
    *,
    station_id: str,
    evses: int,
    options: EvOptions,
    stay_seconds: float,
    new_ev: Callable[[datetime], Ev] | None = None,
    new_ev_for: Callable[[int], EvFactory] | None = None,
) -> dict[int, EvMeter]:
    """One signing meter per EVSE (serial ``<station>-M<n>``), each with fresh EVs per session.

    ``new_ev_for(n)`` gives EVSE ``n`` its own maker of EVs, so which EV arrives where does
    not depend on which EVSE happened to start first.
    """
    shared = new_ev or ev_factory(options, stay_seconds=stay_seconds)
    public = public_key_ocmf(key)
    meters: dict[int, EvMeter] = {}
    for n in range(1, evses + 1):
        factory = shared if new_ev_for is None else new_ev_for(n)
        parked = factory(_PARKED)
        parked.set_limit(0, _PARKED)
        meters[n] = EvMeter(
            parked,
            Meter(key, MeterInfo(serial=f"{station_id}-M{n}"[:64])),
            public_key=public,
            evse_id=f"{station_id}*{n}",
            new_ev=factory,
        )
    return meters
