"""API.md says what the HTTP status codes mean, as csms/web/errors.py maps them."""

from __future__ import annotations

from pathlib import Path

import csms.web

API_MD = (Path(csms.web.__file__).parent / "API.md").read_text(encoding="utf-8")


def test_502_is_a_callerror_or_no_answer_and_a_refusal_is_200() -> None:
    text = " ".join(API_MD.split())
    assert "502 the station refused" not in text
    assert "502 the station answered the CSMS's call with a CALLERROR or not at all" in text
    assert 'the response is 200 with the station\'s answer, e.g. `{"status": "Rejected"}`' in text
