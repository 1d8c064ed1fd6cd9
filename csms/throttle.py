"""Brute-force protection: failed authentications counted per key, with exponential backoff.

A key is ``station:<id>`` or ``address:<ip>``. The first ``free_failures`` failures of a key
are answered after a growing delay (``base_delay`` doubling, capped at ``max_delay``); past
them the key is refused outright for ``2 ** (failures - free_failures)`` seconds (capped at
``max_lock``), which the caller sends as ``Retry-After``. A success forgets the key. Keys
are kept for at most ``max_keys`` (the oldest go first), so a spray of addresses is bounded.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class AuthThrottle:
    free_failures: int = 5
    base_delay: float = 0.1
    max_delay: float = 2.0
    max_lock: float = 300.0
    max_keys: int = 100_000
    clock: Callable[[], float] = time.monotonic
    failures: Counter[str] = field(default_factory=Counter)  # path -> failures (metrics)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (path, kind)
    _keys: dict[str, tuple[int, float]] = field(default_factory=dict)

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may try again; 0 when it is not locked out."""
        entry = self._keys.get(key)
        if entry is None or entry[0] <= self.free_failures:
            return 0
        count, last = entry
        lock = min(self.max_lock, 2.0 ** (count - self.free_failures))
        left = last + lock - self.clock()
        return math.ceil(left) if left > 0 else 0

    def failed(self, key: str) -> float:
        """Count a failure; the seconds to hold back the refusal."""
        count = self._keys.pop(key, (0, 0.0))[0] + 1
        if len(self._keys) >= self.max_keys:
            del self._keys[next(iter(self._keys))]
        self._keys[key] = (count, self.clock())
        return min(self.max_delay, self.base_delay * 2.0 ** (count - 1))

    def succeeded(self, key: str) -> None:
        self._keys.pop(key, None)

    def failure_count(self, key: str) -> int:
        entry = self._keys.get(key)
        return entry[0] if entry else 0


def render_throttle(throttles: Iterable[AuthThrottle]) -> list[str]:
    failures: Counter[str] = Counter()
    refused: Counter[tuple[str, str]] = Counter()
    for t in throttles:
        failures.update(t.failures)
        refused.update(t.refused)
    lines = [
        "# HELP v2g_auth_failures_total Failed authentications, by path (ocpp, api, login).",
        "# TYPE v2g_auth_failures_total counter",
    ]
    lines += [f'v2g_auth_failures_total{{path="{p}"}} {n}' for p, n in sorted(failures.items())]
    lines += [
        "# HELP v2g_auth_refused_total Attempts refused by brute-force backoff, by path and key.",
        "# TYPE v2g_auth_refused_total counter",
    ]
    lines += [
        f'v2g_auth_refused_total{{path="{p}",by="{k}"}} {n}'
        for (p, k), n in sorted(refused.items())
    ]
    return lines
