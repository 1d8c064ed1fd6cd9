"""The Local Authorization List (OCPP 2.0.1 part D): a pure core, no I/O.

SendLocalList (D01) replaces the list (Full) or changes it (Differential: an entry with
``idTokenInfo`` is added or updated, one without it removed); GetLocalListVersion (D02)
reports the version of the list held (0: none). The list is bounded (``capacity``
entries, ``items_per_message`` per request); an update that would pass a bound is refused
whole, so the list is never half-applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CAPACITY = 1000  # LocalAuthListCtrlr.Entries maxLimit
ITEMS_PER_MESSAGE = 250  # LocalAuthListCtrlr.ItemsPerMessage


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One idToken of the list (type and value) with the status the CSMS gave it."""

    id_token: str
    type: str
    status: str


class LocalListError(ValueError):
    """An update the station refuses; ``status`` is the SendLocalList status to answer."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def list_changes(raw: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str | None]]:
    """Convert ``localAuthorizationList`` (snake_case dicts) at the boundary."""
    changes = []
    for item in raw:
        token = item["id_token"]
        info = item.get("id_token_info")
        status = None if info is None else str(info["status"])
        changes.append((str(token["id_token"]), str(token["type"]), status))
    return changes


class LocalList:
    """The station's Local Authorization List and its version."""

    def __init__(
        self, *, capacity: int = CAPACITY, items_per_message: int = ITEMS_PER_MESSAGE
    ) -> None:
        self.capacity = capacity
        self.items_per_message = items_per_message
        self.version = 0
        self._entries: dict[tuple[str, str], ListEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, id_token: str, type: str) -> ListEntry | None:
        return self._entries.get((id_token, type))

    def apply(
        self,
        update_type: str,
        version: int,
        changes: Sequence[tuple[str, str, str | None]],
    ) -> None:
        """Apply one SendLocalList: ``changes`` are (idToken, type, status or None: remove).

        Raises LocalListError (nothing changed) for a version that does not move forward
        on a Differential update, or an update beyond the list's bounds.
        """
        if len(changes) > self.items_per_message:
            raise LocalListError("Failed", "TooManyItems")
        if update_type == "Full":
            entries: dict[tuple[str, str], ListEntry] = {}
        elif update_type == "Differential":
            if version <= self.version:
                raise LocalListError("VersionMismatch", "VersionNotNewer")
            entries = dict(self._entries)
        else:
            raise LocalListError("Failed", "UnknownUpdateType")
        for token, kind, status in changes:
            if status is None:
                entries.pop((token, kind), None)
            else:
                entries[(token, kind)] = ListEntry(token, kind, status)
        if len(entries) > self.capacity:
            raise LocalListError("Failed", "ListFull")
        self._entries = entries
        self.version = version
