"""Test certificates for security profiles 2 and 3: a CA, server and station certificates.

The builders are pure (keys and a clock in, certificates out); ``write_*`` put them on disk as
PEM with private keys at 0600. A station certificate's subject CN is the station id, which is
what security profile 3 binds the connection to (OCPP 2.0.1 Part 2, A00.FR.318/A00.FR.320).
Keys are ECDSA P-256: small, fast, and accepted by OCPP's TLS cipher suites.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms.errors import ConfigError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
DEFAULT_DAYS = 365


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class CertFiles:
    """Where an issued certificate and its key were written."""

    cert: Path
    key: Path


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "v2g-bridge"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, now: datetime, days: int
) -> x509.CertificateBuilder:
    if now.tzinfo is None:
        raise ValueError("certificate validity needs a timezone-aware time")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def build_ca(
    now: datetime,
    *,
    common_name: str = "v2g-bridge test CA",
    days: int = DEFAULT_DAYS,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Issued:
    """A self-signed CA allowed to sign leaf certificates only (path length 0)."""
    key = key or new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key, now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf(
    ca: Issued,
    common_name: str,
    usage: x509.ObjectIdentifier,
    now: datetime,
    days: int,
    san: Sequence[x509.GeneralName] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Issued:
    key = key or new_key()
    builder = (
        _builder(_name(common_name), ca.cert.subject, key, now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses, always including localhost and 127.0.0.1, without repeats."""
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in (*hosts, *DEFAULT_HOSTS):
        host = host.strip()
        if not host or host.lower() in seen:
            continue
        seen.add(host.lower())
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def build_server_cert(
    ca: Issued, hosts: Sequence[str], now: datetime, *, days: int = DEFAULT_DAYS
) -> Issued:
    """The CSMS's TLS certificate: CN is the first host, SANs cover every host."""
    common_name = next((h for h in hosts if h.strip()), DEFAULT_HOSTS[0])
    return _leaf(
        ca,
        common_name,
        ExtendedKeyUsageOID.SERVER_AUTH,
        now,
        days,
        san=subject_alt_names(hosts),
    )


def build_station_cert(
    ca: Issued, station_id: str, now: datetime, *, days: int = DEFAULT_DAYS
) -> Issued:
    """A station's client certificate: subject CN = station id (security profile 3)."""
    if not station_id or len(station_id) > 64:
        raise ConfigError("a station certificate needs a station id of 1 to 64 characters")
    return _leaf(ca, station_id, ExtendedKeyUsageOID.CLIENT_AUTH, now, days)


def common_name(cert: x509.Certificate) -> str | None:
    """The subject CN of a certificate, or None when it has none."""
    attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def peer_common_name(peercert: dict[str, Any] | None) -> str | None:
    """The subject CN from ``ssl.SSLSocket.getpeercert()``'s dict (None or {} when absent)."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


# -- files ---------------------------------------------------------------------------------


def station_file_stem(station_id: str) -> str:
    """``station-<id>`` with anything unsafe in a file name percent-encoded."""
    return "station-" + quote(station_id, safe="-_.")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_issued(issued: Issued, cert_path: Path, key_path: Path) -> CertFiles:
    """Write the certificate (PEM, 0644) and its unencrypted PKCS#8 key (PEM, 0600)."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_bytes)
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    return CertFiles(cert_path, key_path)


def load_ca(directory: Path) -> Issued:
    """Read the CA written by ``write_ca``; a missing or unreadable one is a ConfigError."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(
            f"{directory}: no test CA ({CA_CERT}, {CA_KEY}); run 'v2g certs init' first"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{directory}: cannot read the CA: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path}: expected an EC private key")
    return Issued(cert, key)


def write_ca(directory: Path, now: datetime, *, days: int = DEFAULT_DAYS) -> CertFiles:
    """Create ``ca.pem`` and ``ca.key``; refuse to overwrite an existing CA."""
    if (directory / CA_KEY).exists():
        raise ConfigError(f"{directory / CA_KEY} already exists; not overwriting the CA")
    return write_issued(build_ca(now, days=days), directory / CA_CERT, directory / CA_KEY)


def write_server_cert(
    directory: Path, hosts: Sequence[str], now: datetime, *, days: int = DEFAULT_DAYS
) -> CertFiles:
    """Create ``server.pem`` and ``server.key`` signed by the CA in ``directory``."""
    issued = build_server_cert(load_ca(directory), hosts, now, days=days)
    return write_issued(issued, directory / SERVER_CERT, directory / SERVER_KEY)


def write_station_cert(
    directory: Path, station_id: str, now: datetime, *, days: int = DEFAULT_DAYS
) -> CertFiles:
    """Create ``station-<id>.pem`` and ``.key`` signed by the CA in ``directory``."""
    issued = build_station_cert(load_ca(directory), station_id, now, days=days)
    stem = station_file_stem(station_id)
    return write_issued(issued, directory / f"{stem}.pem", directory / f"{stem}.key")
