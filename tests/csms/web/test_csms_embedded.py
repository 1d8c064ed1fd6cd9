"""With an embedded validator set, the review app reads the CSMS's own ledger."""

from __future__ import annotations

from pathlib import Path

import httpx

from csms.app import start_csms
from csms.config import CsmsConfig
from csms.operators import OperatorRegistry


async def test_chain_page_reads_the_embedded_ledger(tmp_path: Path) -> None:
    config = CsmsConfig(port=0, http_port=0, close_timeout=0.3)
    app = await start_csms(tmp_path / "data", config, ledger="embedded", serve_web=True)
    try:
        assert app.web is not None and app.genesis_path is not None
        await OperatorRegistry(app.store).add("arthur", "auditor-pw", "auditor", "t")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
            chain = (await http.get("/api/chain", auth=("arthur", "auditor-pw"))).json()
    finally:
        await app.stop()
    assert chain["available"] is True and chain["verified"] is True
    assert chain["chain_id"] == f"v2g-{(tmp_path / 'data').name}"
    assert len(chain["validators"]) == 4
