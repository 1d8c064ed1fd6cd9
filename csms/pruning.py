"""Counting and logging the rows the per-station caps removed (pure: time is passed in).

The store prunes a station's oldest rows of a kind past its ``keep_<kind>`` cap
(``csms.store.retention``) and says how many went; the status of a connector past
``max_connectors_per_station`` is not stored at all (kind ``connector_status``). Every row
removed or not stored is counted per kind (``v2g_store_pruned_total{kind}``); a station
reaching its cap is logged at most once per ``interval`` seconds and kind, so a station that
floods does not flood the log too.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 3600.0


@dataclass(slots=True)
class PruneLog:
    """Process-wide counts of pruned rows, and when each station was last logged per kind."""

    interval: float = LOG_INTERVAL_S
    pruned: Counter[str] = field(default_factory=Counter)  # kind -> rows removed
    _since_logged: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def note(
        self,
        station_id: str,
        kind: str,
        removed: int,
        keep: int,
        now: float,
        *,
        setting: str = "",
        what: str = "oldest removed",
    ) -> bool:
        """Count ``removed`` rows of ``kind``; log once per station, kind and interval (True
        when this call logged). The log line says how many went since the last one."""
        if removed <= 0:
            return False
        self.pruned[kind] += removed
        key = (station_id, kind)
        last, unlogged = self._since_logged.get(key, (float("-inf"), 0))
        unlogged += removed
        if now - last < self.interval:
            self._since_logged[key] = (last, unlogged)
            return False
        self._since_logged[key] = (now, 0)
        log.warning(
            "%s: %s past %s (%d per station): %d %s",
            station_id,
            kind,
            setting or f"keep_{kind}",
            keep,
            unlogged,
            what,
        )
        return True
