"""Configuration of security profiles and limits; the tolerance setting in the registry CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from csms.cli import csms_command, stations_group
from csms.config import CsmsConfig, check_security, load_config
from csms.errors import ConfigError, RegistryError
from csms.store.sqlite import CsmsStore


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "csms.yaml"
    path.write_text(text)
    return path


def test_tls_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    text = "security_profile: 3\ntls_cert: pki/server.pem\ntls_key: pki/server.key\n"
    config = load_config(write(tmp_path, text + "tls_ca: /etc/ca.pem\n"))
    assert config.security_profile == 3
    assert config.tls_cert == str(tmp_path / "pki" / "server.pem")
    assert config.tls_key == str(tmp_path / "pki" / "server.key")
    assert config.tls_ca == "/etc/ca.pem"


def test_limits_are_read() -> None:
    defaults = CsmsConfig()
    assert defaults.security_profile == 1
    assert defaults.rate_limit_burst >= 1 and defaults.rate_limit_per_s > 0


def test_limit_values_from_file(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "max_connections: 5\nrate_limit_per_s: 2.5\nrate_limit_burst: 4\n"
            "rate_limit_disconnect_after: 9\n",
        )
    )
    assert (
        config.max_connections,
        config.rate_limit_per_s,
        config.rate_limit_burst,
        config.rate_limit_disconnect_after,
    ) == (5, 2.5, 4, 9)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("security_profile: 4\n", "key 'security_profile': expected 1, 2 or 3"),
        ("security_profile: 2\n", "key 'tls_cert': security profile 2 expected a PEM file"),
        (
            "security_profile: 3\ntls_cert: a.pem\ntls_key: a.key\n",
            "key 'tls_ca': security profile 3 expected a PEM file",
        ),
        ("tls_cert: a.pem\ntls_key: a.key\n", "expected 2 or 3 when TLS files are given"),
        ("max_connections: 0\n", "key 'max_connections': expected a positive number"),
        ("rate_limit_per_s: -1\n", "key 'rate_limit_per_s': expected a positive number"),
        ("rate_limit_burst: many\n", "key 'rate_limit_burst': expected an integer"),
        ("tls_ca: 3\n", "key 'tls_ca': expected a string"),
    ],
)
def test_bad_security_settings_name_file_key_and_expectation(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_check_security_accepts_complete_profiles() -> None:
    check_security(CsmsConfig())
    check_security(CsmsConfig(security_profile=2, tls_cert="c", tls_key="k"))
    check_security(CsmsConfig(security_profile=3, tls_cert="c", tls_key="k", tls_ca="a"))


def test_csms_command_refuses_an_incomplete_profile(tmp_path: Path) -> None:
    cert = tmp_path / "server.pem"
    cert.write_text("x")
    result = CliRunner().invoke(
        csms_command,
        ["--data-dir", str(tmp_path / "data"), "--security-profile", "3", "--tls-cert", str(cert)],
    )
    assert result.exit_code == 1
    assert "'tls_key'" in result.output


def test_registry_tolerance_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(
        stations_group,
        ["add", "CS-1", "--password", "s3cret-pass", "--tolerance", "tolerant", *data],
    )
    assert added.exit_code == 0, added.output
    runner.invoke(stations_group, ["add", "CS-2", "--password", "s3cret-pass", *data])

    async def modes() -> tuple[str, str, str]:
        store = await CsmsStore.open_data_dir(tmp_path)
        try:
            return (
                await store.get_tolerance("CS-1"),
                await store.get_tolerance("CS-2"),
                await store.get_tolerance("CS-UNKNOWN"),
            )
        finally:
            await store.close()

    assert asyncio.run(modes()) == ("tolerant", "strict", "strict")
    changed = runner.invoke(stations_group, ["set", "CS-1", "--tolerance", "strict", *data])
    assert changed.exit_code == 0, changed.output
    runner.invoke(stations_group, ["set", "CS-2", "--tolerance", "tolerant", *data])
    assert asyncio.run(modes()) == ("strict", "tolerant", "strict")
    unknown = runner.invoke(stations_group, ["set", "CS-9", "--tolerance", "strict", *data])
    assert unknown.exit_code == 1 and "not registered" in unknown.output
    bad = runner.invoke(stations_group, ["set", "CS-1", "--tolerance", "lenient", *data])
    assert bad.exit_code == 2
    nothing = runner.invoke(stations_group, ["set", "CS-1", *data])
    assert nothing.exit_code == 2 and "--tolerance" in nothing.output


async def test_removing_a_station_removes_its_settings(tmp_path: Path) -> None:
    store = await CsmsStore.open(":memory:")
    try:
        await store.add_station("CS-1", "scrypt$x", "2026-01-01T00:00:00Z")
        await store.set_tolerance("CS-1", "tolerant")
        await store.remove_station("CS-1")
        await store.add_station("CS-1", "scrypt$x", "2026-01-01T00:00:00Z")
        assert await store.get_tolerance("CS-1") == "strict"
        with pytest.raises(RegistryError):
            await store.set_tolerance("CS-1", "lenient")
    finally:
        await store.close()


def test_registry_security_profile_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    runner.invoke(stations_group, ["add", "CS-1", "--password", "s3cret-pass", *data])

    async def profile() -> int | None:
        store = await CsmsStore.open_data_dir(tmp_path)
        try:
            return await store.get_security_profile("CS-1")
        finally:
            await store.close()

    assert asyncio.run(profile()) is None
    result = runner.invoke(stations_group, ["set", "CS-1", "--security-profile", "2", *data])
    assert result.exit_code == 0 and "security profile 2" in result.output
    assert asyncio.run(profile()) == 2
    result = runner.invoke(stations_group, ["set", "CS-1", "--security-profile", "default", *data])
    assert result.exit_code == 0
    assert asyncio.run(profile()) is None
    assert (
        runner.invoke(stations_group, ["set", "CS-1", "--security-profile", "4", *data]).exit_code
        == 2
    )


def test_list_shows_tolerance_and_profile(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(
        stations_group,
        [
            "add",
            "CS-OLD",
            "--password",
            "s3cret-pass",
            "--tolerance",
            "tolerant",
            "--security-profile",
            "2",
            *data,
        ],
    )
    assert added.exit_code == 0, added.output
    runner.invoke(stations_group, ["add", "CS-NEW", "--password", "s3cret-pass", *data])
    listed = runner.invoke(stations_group, ["list", *data])
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line.split() for line in listed.output.splitlines()[1:]}
    assert rows["CS-OLD"][3:5] == ["tolerant", "2"]
    assert rows["CS-NEW"][3:5] == ["strict", "csms"]
