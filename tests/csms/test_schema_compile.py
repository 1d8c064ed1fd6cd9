"""``v2g csms`` compiles the OCPP schemas it uses before it listens, not on a station's first
message of each kind (which held the event loop 20-200 ms per schema, more when busy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.app import start_csms
from csms.config import CsmsConfig
from csms.errors import OcppCallError


def compiled(app: object, version: str) -> set[tuple[str, bool]]:
    schemas = app.server._schemas[version]  # type: ignore[attr-defined]
    return {key for key, validator in schemas._validators.items() if validator is not None}


async def test_the_schemas_of_every_handled_action_are_compiled_before_listening(
    tmp_path: Path,
) -> None:
    app = await start_csms(tmp_path / "lazy", CsmsConfig(port=0))
    try:
        assert compiled(app, "ocpp2.0.1") == set()  # the default: on first use
    finally:
        await app.stop()
    app = await start_csms(tmp_path / "csms", CsmsConfig(port=0), compile_schemas=True)
    try:
        for version in ("ocpp2.0.1", "ocpp2.1"):
            handled = app.server._handlers[version]
            done = compiled(app, version)
            assert ("TransactionEvent", True) in done and ("TransactionEvent", False) in done
            assert {action for action, request in done if request} == set(handled)
        # and they check what the lazy ones checked
        with pytest.raises(OcppCallError, match="Heartbeat request"):
            app.server._schemas["ocpp2.0.1"].validate_request("Heartbeat", {"extra": 1})
    finally:
        await app.stop()
