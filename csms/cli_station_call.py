"""``v2g stations call ID ACTION [PAYLOAD]``: send one OCPP message to a connected station.

The running CSMS owns the station's websocket, so the command goes through its API
(``POST /api/stations/{id}/ocpp/{action}``, an operator's HTTP Basic credentials): the same
schema check, the same clamping of charging profiles, the same answer. With several CSMS
processes on one PostgreSQL database, any process's API reaches the station wherever it is
connected. It prints the JSON
answer (``request`` as sent, ``response``, ``clamped``).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import click

from csms.cli import stations_group

__all__ = ["stations_group"]

PASSWORD_ENV = "V2G_API_PASSWORD"
TIMEOUT_S = 60.0


class _Payload(click.ParamType):
    name = "JSON"

    def convert(self, value: Any, param: Any, ctx: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            loaded = json.loads(value)
        except ValueError as exc:
            self.fail(f"not JSON: {exc}", param, ctx)
        if not isinstance(loaded, dict):
            self.fail("expected a JSON object, e.g. '{\"connectorId\": 1}'", param, ctx)
        return loaded


def post_json(url: str, body: dict[str, Any], user: str, password: str) -> tuple[int, Any]:
    """POST ``body`` as JSON with HTTP Basic; (status, decoded JSON answer)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"null")
        except ValueError:
            detail = None
        return exc.code, detail


@stations_group.command("call")
@click.argument("station_id")
@click.argument("action")
@click.argument("payload", type=_Payload(), default="{}")
@click.option(
    "--api",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The running CSMS's HTTP address (v2g csms --http-host/--http-port).",
)
@click.option("--user", required=True, help="An operator (v2g operators add NAME).")
@click.option(
    "--password",
    default=None,
    help=f"The operator's password (default: ${PASSWORD_ENV}, else asked for).",
)
def stations_call(
    station_id: str,
    action: str,
    payload: dict[str, Any],
    api: str,
    user: str,
    password: str | None,
) -> None:
    """Send ACTION with PAYLOAD (its JSON as the OCPP specification writes it) to the
    connected STATION_ID, e.g.: v2g stations call CS1 UnlockConnector '{"connectorId": 1}'

    The payload is checked against the schema of the station's OCPP version; a charging
    profile is clamped to the dispatch bounds first.
    """
    if not api.startswith(("http://", "https://")):
        raise click.BadParameter(f"{api!r}: expected http://HOST:PORT", param_hint="--api")
    if password is None:
        password = os.environ.get(PASSWORD_ENV) or click.prompt(
            f"password for {user}", hide_input=True
        )
    url = f"{api.rstrip('/')}/api/stations/{quote(station_id, safe='')}/ocpp/{quote(action)}"
    try:
        status, answer = post_json(url, payload, user, password)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"{api}: the CSMS does not answer ({reason})") from None
    if status != 200:
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(str(d.get("msg", d)) for d in detail)
        raise click.ClickException(f"{action} to {station_id}: HTTP {status}: {detail}")
    click.echo(json.dumps(answer, indent=2, sort_keys=True))
