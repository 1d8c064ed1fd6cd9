"""TLS for security profiles 2 and 3: the server's SSL context and the client-certificate check.

Profile 2: TLS with the server certificate, stations authenticate with HTTP Basic auth.
Profile 3: mutual TLS; the client certificate must chain to ``tls_ca`` and its subject CN
must equal the station id in the URL (OCPP 2.0.1 Part 2, A00.FR.320). The certificate is
requested but not demanded at the TLS layer, so that a station without one gets a clear
HTTP 401 at the handshake instead of a bare TLS alert, and so that one listener can serve
stations of profiles 2 and 3 side by side (a per-station profile in the registry).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from csms.certs import peer_common_name
from csms.config import CsmsConfig
from csms.errors import ConfigError


def server_ssl_context(config: CsmsConfig) -> ssl.SSLContext | None:
    """The listening socket's context, or None for profile 1 (plain ws://)."""
    if config.security_profile == 1:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security: TLS 1.2 or later
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls_cert {config.tls_cert!r} / tls_key {config.tls_key!r}: cannot load: {exc}"
        ) from None
    if config.tls_ca:  # profile 3, or profile 2 hosting some profile-3 stations
        try:
            context.load_verify_locations(cafile=config.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"tls_ca {config.tls_ca!r}: cannot load: {exc}") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused and with which HTTP status."""

    status: HTTPStatus
    reason: str


def check_client_certificate(station_id: str, peercert: dict[str, Any] | None) -> Refusal | None:
    """Profile 3: a verified certificate whose CN is the station id, else a refusal.

    ``peercert`` is ``SSLObject.getpeercert()``: None or empty without a verified certificate.
    """
    name = peer_common_name(peercert)
    if name is None:
        return Refusal(HTTPStatus.UNAUTHORIZED, "no client certificate")
    if name != station_id:
        return Refusal(
            HTTPStatus.FORBIDDEN, f"client certificate is for {name!r}, not {station_id!r}"
        )
    return None
