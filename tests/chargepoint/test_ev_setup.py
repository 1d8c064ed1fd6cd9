"""The V2G station mode's composition: meter key files, EV options, one signing meter per EVSE."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from chargepoint.cli import chargepoint_command
from chargepoint.errors import ConfigError
from chargepoint.ev_setup import EvOptions, ensure_meter_key, ev_factory, ev_meters, public_key_path
from chargepoint.meter import load_meter_key

AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def test_meter_key_is_created_private_once_and_its_public_pem_written_beside_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "meter.pem"
    key = ensure_meter_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = serialization.load_pem_public_key(public_key_path(path).read_bytes())
    assert public == key.public_key()
    again = ensure_meter_key(path)  # the same key, not a new one
    assert again.private_numbers() == key.private_numbers()
    assert load_meter_key(path).private_numbers() == key.private_numbers()


def test_print_meter_key_prints_the_public_pem_and_does_not_connect(tmp_path: Path) -> None:
    path = tmp_path / "m.pem"
    result = CliRunner().invoke(
        chargepoint_command,
        ["ws://127.0.0.1:9/ocpp", "CS1", "--meter-key", str(path), "--print-meter-key"],
    )
    assert result.exit_code == 0, result.output
    assert result.output == public_key_path(path).read_text()
    assert result.output.startswith("-----BEGIN PUBLIC KEY-----")
    alone = CliRunner().invoke(chargepoint_command, ["ws://h/ocpp", "CS1", "--print-meter-key"])
    assert alone.exit_code == 2 and "--meter-key" in alone.output


def test_each_session_gets_a_fresh_ev_with_the_options() -> None:
    options = EvOptions(battery_kwh=40, soc_pct=30, reserve_soc_pct=25, target_soc_pct=90)
    new_ev = ev_factory(options, stay_seconds=7200)
    ev = new_ev(AT)
    assert ev.spec.capacity_wh == 40_000 and round(ev.soc_pct) == 30
    assert ev.spec.departure == AT + timedelta(hours=2)
    assert (ev.spec.max_charge_w, ev.spec.max_discharge_w) == (11_000, 7_000)
    assert new_ev(AT) is not ev


def test_a_seed_varies_evs_reproducibly_within_bounds() -> None:
    options = EvOptions(battery_kwh=50, soc_pct=50, seed=7)
    first = [ev_factory(options, stay_seconds=60)(AT) for _ in range(1)]
    made = ev_factory(options, stay_seconds=60)
    series = [(e.spec.capacity_wh, e.soc_pct) for e in (made(AT) for _ in range(20))]
    again = ev_factory(options, stay_seconds=60)
    assert series == [(e.spec.capacity_wh, e.soc_pct) for e in (again(AT) for _ in range(20))]
    assert len(set(series)) > 1
    assert all(40_000 <= c <= 60_000 and 35 <= s <= 65 for c, s in series)
    assert first[0].spec.capacity_wh == series[0][0]


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        EvOptions(battery_kwh=0)
    with pytest.raises(ConfigError):
        EvOptions(soc_pct=120)


def test_one_meter_per_evse_with_its_own_serial_and_no_flow_before_a_session(
    tmp_path: Path,
) -> None:
    key = ensure_meter_key(tmp_path / "k.pem")
    meters = ev_meters(key, station_id="CS9", evses=2, options=EvOptions(), stay_seconds=3600)
    assert sorted(meters) == [1, 2]
    assert [m.meter.info.serial for m in meters.values()] == ["CS9-M1", "CS9-M2"]
    assert meters[1].ev.power_w == 0
