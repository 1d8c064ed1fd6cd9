"""Test CA, server and station certificates: contents, chain, file permissions, CLI."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from csms.certs import (
    build_ca,
    build_server_cert,
    build_station_cert,
    common_name,
    peer_common_name,
    station_file_stem,
    write_ca,
    write_station_cert,
)
from csms.cli_certs import certs_group
from csms.errors import ConfigError

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_station_certificate_names_the_station_and_is_signed_by_the_ca() -> None:
    ca = build_ca(NOW)
    station = build_station_cert(ca, "CS-042", NOW, days=30)
    assert common_name(station.cert) == "CS-042"
    assert station.cert.issuer == ca.cert.subject
    station.cert.verify_directly_issued_by(ca.cert)
    other_ca = build_ca(NOW)
    with pytest.raises(InvalidSignature):
        station.cert.verify_directly_issued_by(other_ca.cert)
    usage = station.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert ExtendedKeyUsageOID.SERVER_AUTH not in usage
    assert station.cert.not_valid_after_utc > NOW
    assert (station.cert.not_valid_after_utc - NOW).days == 30


def test_server_certificate_covers_the_hosts_and_loopback() -> None:
    ca = build_ca(NOW)
    server = build_server_cert(ca, ["csms.example.org", "10.0.0.7"], NOW)
    san = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["csms.example.org", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    assert common_name(server.cert) == "csms.example.org"


def test_ca_may_sign_but_leaves_may_not() -> None:
    ca = build_ca(NOW)
    leaf = build_station_cert(ca, "CS-1", NOW)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        build_ca(datetime(2026, 1, 1))


def test_peer_common_name_reads_the_ssl_module_shape() -> None:
    peercert = {
        "subject": ((("organizationName", "v2g-bridge"),), (("commonName", "CS-9"),)),
    }
    assert peer_common_name(peercert) == "CS-9"
    assert peer_common_name({}) is None
    assert peer_common_name(None) is None
    assert peer_common_name({"subject": ((("organizationName", "x"),),)}) is None


def test_station_file_names_cannot_escape_the_directory() -> None:
    assert "/" not in station_file_stem("../../etc/passwd")
    assert station_file_stem("CS-1") == "station-CS-1"


def test_written_keys_are_private_and_load_into_an_ssl_context(tmp_path: Path) -> None:
    ca_files = write_ca(tmp_path, NOW)
    files = write_station_cert(tmp_path, "CS 7/a", NOW)
    assert files.cert.parent == tmp_path
    for key in (ca_files.key, files.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_files.cert))
    context.load_cert_chain(str(files.cert), str(files.key))
    loaded = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert common_name(loaded) == "CS 7/a"
    assert isinstance(loaded.public_key(), ec.EllipticCurvePublicKey)


def test_ca_is_never_overwritten(tmp_path: Path) -> None:
    write_ca(tmp_path, NOW)
    before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        write_ca(tmp_path, NOW)
    assert (tmp_path / "ca.pem").read_bytes() == before


def test_cli_creates_ca_server_and_station(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = str(tmp_path / "pki")
    result = runner.invoke(certs_group, ["init", "--dir", directory])
    assert result.exit_code == 0, result.output
    result = runner.invoke(certs_group, ["server", "--dir", directory, "--host", "csms.local"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(certs_group, ["station", "CS-001", "--dir", directory])
    assert result.exit_code == 0, result.output
    pki = tmp_path / "pki"
    server = x509.load_pem_x509_certificate((pki / "server.pem").read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "csms.local" in san.get_values_for_type(x509.DNSName)
    station = x509.load_pem_x509_certificate((pki / "station-CS-001.pem").read_bytes())
    assert common_name(station) == "CS-001"
    assert stat.S_IMODE((pki / "station-CS-001.key").stat().st_mode) == 0o600


def test_cli_without_ca_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(certs_group, ["station", "CS-1", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "v2g certs init" in result.output
    assert not list(tmp_path.iterdir())
