"""Certificate management (OCPP 2.0.1 part A): SignCertificate (A02, A03) and
CertificateSigned.

A triggered SignChargingStationCertificate, SignV2GCertificate or SignCombinedCertificate
makes a fresh P-256 key and sends a PKCS#10 request for it (no ``certificateType`` for the
combined one). CertificateSigned is Accepted only for a chain whose leaf certifies a key
the station asked for; the chain is then kept for that use.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v201 import call, call_result

from chargepoint.payloads import status_info
from chargepoint.station import FollowUp, Station

LOG = logging.getLogger(__name__)

COMBINED = "Combined"  # the key of a request that names no certificateType
TRIGGERS = {
    "SignChargingStationCertificate": "ChargingStationCertificate",
    "SignV2GCertificate": "V2GCertificate",
    "SignCombinedCertificate": COMBINED,
}

Answer = tuple[Any, FollowUp | None]


def sign_request(station: Station, use: str) -> call.SignCertificate:
    """A SignCertificateRequest for a new key, kept until its certificate arrives."""
    key = ec.generate_private_key(ec.SECP256R1())
    station.pending_keys[use] = key
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, station.station_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, station.config.vendor),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    return call.SignCertificate(csr=pem, certificate_type=None if use == COMBINED else use)


async def send_sign_request(station: Station, use: str) -> None:
    """Send the request; a Rejected answer is logged (the CSMS may not sign)."""
    payload = sign_request(station, use)
    await station.notify(payload)


def certificate_signed(station: Station, chain: str, certificate_type: str | None) -> Answer:
    """Accept a chain whose leaf holds a key this station asked a certificate for."""
    try:
        leaf = x509.load_pem_x509_certificate(chain.encode())
    except ValueError:
        return _refused("InvalidCertificate"), None
    wanted = [certificate_type, COMBINED] if certificate_type else list(station.pending_keys)
    offered = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for use in wanted:
        key = station.pending_keys.get(use)
        if key is None:
            continue
        asked = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if asked == offered:
            del station.pending_keys[use]
            station.certificates[use] = chain
            LOG.info("%s: installed a %s certificate", station.station_id, use)
            return call_result.CertificateSigned(status="Accepted"), None
    return _refused("NoMatchingRequest"), None


def _refused(reason: str) -> call_result.CertificateSigned:
    return call_result.CertificateSigned(status="Rejected", status_info=status_info(reason))
