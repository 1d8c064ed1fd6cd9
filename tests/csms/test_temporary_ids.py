"""The aggregator's temporary IDs: issued by the CLI, personal data encrypted at rest."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from csms.blocks.authorization import authorize_token
from csms.config import CsmsConfig
from csms.context import CsmsServices
from csms.identity import decrypt_personal, load_key_file
from csms.store.sqlite import CsmsStore
from csms.timeutil import utc_now

VIN = "WVWZZZ1JZXW000001"
PAYMENT_REF = "IBAN-DE89370400440532013000"


def test_temporary_id_is_usable_and_personal_data_is_only_stored_encrypted(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "v2g", "tokens", "issue-temporary", "--vin", VIN,
         "--payment-ref", PAYMENT_REF, "--payment", "ledger", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("TMP") and len(token) <= 36

    async def check() -> None:
        store = await CsmsStore.open_data_dir(tmp_path)
        try:
            record = await store.get_token(token, "Central")
            assert record is not None and record.payment == "ledger"
            assert record.expires_at is not None and record.pseudonym is not None
            assert record.pseudonym.startswith("v1:") and VIN not in record.pseudonym
            assert record.personal is not None and VIN.encode() not in record.personal
            key = load_key_file(tmp_path / "keys" / "personal.key")
            personal = decrypt_personal(record.personal, key, bound_to=token)
            assert (personal.vin, personal.payment_reference) == (VIN, PAYMENT_REF)
            services = CsmsServices(store=store, config=CsmsConfig(), clock=utc_now)
            assert (await authorize_token(services, token, "Central"))["status"] == "Accepted"
        finally:
            await store.close()

    asyncio.run(check())
    for path in tmp_path.glob("csms.sqlite*"):  # neither in the database nor in its WAL
        content = path.read_bytes()
        assert VIN.encode() not in content and PAYMENT_REF.encode() not in content


def test_issue_temporary_needs_exactly_one_identifier(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "v2g", "tokens", "issue-temporary", "--payment-ref", "x",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "exactly one of --vin and --phone" in result.stderr
