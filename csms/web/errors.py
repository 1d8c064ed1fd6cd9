"""The web layer's exception tree, mapped to HTTP statuses in exactly one place (``app``).

WebError
├── Unauthorized   401  no or wrong credentials
├── Forbidden      403  an auditor asked to act
├── NotFound       404  no such session, settlement or station
├── BadRequest     400  a malformed filter or body
├── Conflict       409  the action does not fit the state (read-only view, not connected)
├── TooManyAttempts 429 too many failed logins from this address or for this name
├── Upstream       502  the station answered with a CALLERROR or not at all
└── Busy           503  too many calls already wait on other CSMS processes (Retry-After)
"""

from __future__ import annotations

from csms.errors import CsmsError


class WebError(CsmsError):
    status = 500


class Unauthorized(WebError):
    status = 401


class Forbidden(WebError):
    status = 403


class NotFound(WebError):
    status = 404


class BadRequest(WebError):
    status = 400


class Conflict(WebError):
    status = 409


class TooManyAttempts(WebError):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; try again in {retry_after} s")
        self.retry_after = retry_after


class Upstream(WebError):
    status = 502


class Busy(WebError):
    status = 503
    retry_after = 1
