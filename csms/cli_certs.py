"""``v2g certs``: a test CA, the CSMS's server certificate and station client certificates.

For security profiles 2 (TLS + Basic auth) and 3 (mutual TLS) in development and tests; a
production operator uses the certificates of their own PKI instead.
"""

from __future__ import annotations

from pathlib import Path

import click

from csms.certs import DEFAULT_DAYS, write_ca, write_server_cert, write_station_cert
from csms.errors import CsmsError
from csms.timeutil import utc_now

CERT_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory holding the CA and the issued certificates.",
)
DAYS = click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=DEFAULT_DAYS,
    show_default=True,
    help="Validity in days.",
)


@click.group("certs")
def certs_group() -> None:
    """Create test certificates for TLS (security profile 2) and mutual TLS (profile 3)."""


@certs_group.command("init")
@CERT_DIR
@DAYS
def certs_init(directory: Path, days: int) -> None:
    """Create a test CA (ca.pem, ca.key) in DIR."""
    try:
        files = write_ca(directory, utc_now(), days=days)
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"CA certificate {files.cert}, key {files.key}")


@certs_group.command("server")
@CERT_DIR
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="DNS name or IP address of the CSMS (repeatable); localhost and 127.0.0.1 are added.",
)
@DAYS
def certs_server(directory: Path, hosts: tuple[str, ...], days: int) -> None:
    """Issue the CSMS's TLS server certificate (server.pem, server.key) from the CA in DIR."""
    try:
        files = write_server_cert(directory, list(hosts), utc_now(), days=days)
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"server certificate {files.cert}, key {files.key}")


@certs_group.command("station")
@click.argument("station_id")
@CERT_DIR
@DAYS
def certs_station(station_id: str, directory: Path, days: int) -> None:
    """Issue a client certificate whose subject CN is STATION_ID, from the CA in DIR."""
    try:
        files = write_station_cert(directory, station_id, utc_now(), days=days)
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"station certificate {files.cert}, key {files.key}")


if __name__ == "__main__":
    certs_group()
