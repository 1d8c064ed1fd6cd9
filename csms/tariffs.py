"""Tariffs: import and export prices over time, loaded from a YAML file.

Prices are integers: micro-units of the currency per kWh. Two shapes of file:

    id: tou-2026                      id: spot-2026-11-25
    currency: EUR                     currency: EUR
    timezone: Europe/Berlin           series:
    daily:                              - start: "2026-11-25T00:00:00+01:00"
      - start: "00:00"                    import_price: 210000
        import_price: 220000              export_price: 60000
        export_price: 60000             - start: "2026-11-25T17:00:00+01:00"
      - start: "17:00"                    ...
        import_price: 380000
        export_price: 450000

A daily tariff recurs every day by local time in its timezone (the last entry of a day runs
until the first of the next, and DST shifts are followed); a series tariff lists absolute
start times and has no price before its first entry. The SHA-256 of the file bytes is kept
so that every settlement names exactly the tariff it was priced with.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from csms.errors import ConfigError

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class TariffError(ConfigError):
    """A tariff file is unreadable or wrong (the message names the file, key and expectation),
    or a price was asked for a time the tariff does not cover."""


@dataclass(frozen=True, slots=True)
class Price:
    """The prices in force from ``start`` (micro-units per kWh)."""

    start: datetime
    import_price: int
    export_price: int


@dataclass(frozen=True, slots=True)
class DailyEntry:
    """From local time ``start`` each day until the next entry."""

    start: time
    import_price: int
    export_price: int


@dataclass(frozen=True, slots=True)
class Tariff:
    """A loaded tariff; exactly one of ``daily`` (with ``timezone``) or ``series`` is set."""

    id: str
    currency: str
    sha256: str
    source: str
    timezone: str | None
    daily: tuple[DailyEntry, ...]
    series: tuple[Price, ...]

    def price_at(self, moment: datetime) -> Price:
        """The prices in force at ``moment``; ``start`` is when that price began."""
        _require_aware(moment)
        if self.series:
            current = None
            for price in self.series:
                if price.start > moment:
                    break
                current = price
            if current is None:
                raise TariffError(
                    f"{self.source}: series: no price before {self.series[0].start.isoformat()}"
                )
            return current
        starts = self._daily_starts(moment - timedelta(days=2), moment + timedelta(days=1))
        return [p for p in starts if p.start <= moment][-1]

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """Instants strictly between ``start`` and ``end`` at which a price changes (UTC)."""
        _require_aware(start)
        _require_aware(end)
        if self.series:
            prices: Sequence[Price] = self.series
        else:
            prices = self._daily_starts(start - timedelta(days=1), end + timedelta(days=1))
        return [p.start for p in prices if start < p.start < end]

    def _daily_starts(self, lo: datetime, hi: datetime) -> list[Price]:
        """Each daily entry's start as an absolute UTC instant, for local days around lo..hi."""
        assert self.timezone is not None
        zone = _zone(self.timezone)
        day: date = lo.astimezone(zone).date()
        last: date = hi.astimezone(zone).date()
        found: dict[datetime, Price] = {}
        while day <= last:
            for price in _day_prices(self.timezone, self.daily, day):
                found[price.start] = price
            day += timedelta(days=1)
        return [found[k] for k in sorted(found)]


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.lru_cache(maxsize=4096)
def _day_prices(timezone: str, daily: tuple[DailyEntry, ...], day: date) -> tuple[Price, ...]:
    """One local day's entries as absolute instants (cached: running costs ask often)."""
    zone = _zone(timezone)
    return tuple(
        Price(
            datetime.combine(day, entry.start, tzinfo=zone).astimezone(UTC),
            entry.import_price,
            entry.export_price,
        )
        for entry in daily
    )


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("tariff times must carry a timezone")


def load_tariff(path: Path) -> Tariff:
    """Read and check a tariff file; raises TariffError naming the file, key and expectation."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TariffError(f"{path}: cannot read tariff file: {exc.strerror}") from exc
    return parse_tariff(data, source=str(path))


def parse_tariff(data: bytes, *, source: str) -> Tariff:
    """Build a tariff from the bytes of a tariff file (``source`` names it in errors)."""
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise TariffError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise TariffError(f"{source}: expected a mapping at the top level")
    check = _Checker(source)
    unknown = set(document) - {"id", "currency", "timezone", "daily", "series"}
    if unknown:
        raise TariffError(f"{source}: unknown keys {sorted(unknown)}")
    tariff_id = check.text(document, "id")
    currency = check.text(document, "currency")
    if not _CURRENCY.match(currency):
        raise TariffError(f"{source}: currency: expected an ISO 4217 code, got {currency!r}")
    if ("daily" in document) == ("series" in document):
        raise TariffError(f"{source}: expected exactly one of 'daily' or 'series'")
    digest = hashlib.sha256(data).hexdigest()
    if "daily" in document:
        zone = check.text(document, "timezone")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise TariffError(f"{source}: timezone: expected an IANA zone, got {zone!r}") from exc
        daily = tuple(check.daily_entry(e, i) for i, e in enumerate(check.items(document, "daily")))
        starts = [e.start for e in daily]
        if len(set(starts)) != len(starts):
            raise TariffError(f"{source}: daily: two entries start at the same time")
        daily = tuple(sorted(daily, key=lambda e: e.start))
        return Tariff(tariff_id, currency, digest, source, zone, daily, ())
    if "timezone" in document:
        raise TariffError(f"{source}: timezone: only daily tariffs take a timezone")
    series = tuple(check.series_entry(e, i) for i, e in enumerate(check.items(document, "series")))
    for before, after in itertools.pairwise(series):
        if after.start <= before.start:
            raise TariffError(
                f"{source}: series: start times must increase ({after.start.isoformat()})"
            )
    return Tariff(tariff_id, currency, digest, source, None, (), series)


class _Checker:
    """Field checks that name the file and key in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any) -> TariffError:
        return TariffError(f"{self.source}: {key}: expected {expected}, got {got!r}")

    def text(self, mapping: dict[str, Any], key: str, where: str = "") -> str:
        value = mapping.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where + key, "a non-empty string", value)
        return value

    def price(self, mapping: dict[str, Any], key: str, where: str) -> int:
        value = mapping.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where + key, "an integer price in micro-units per kWh", value)
        return value

    def items(self, document: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = document.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "a non-empty list of entries", value)
        for index, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise self.fail(f"{key}[{index}]", "a mapping", entry)
            unknown = set(entry) - {"start", "import_price", "export_price"}
            if unknown:
                raise self.fail(f"{key}[{index}]", "only start/import_price/export_price", entry)
        return value

    def daily_entry(self, entry: dict[str, Any], index: int) -> DailyEntry:
        where = f"daily[{index}]."
        start = entry.get("start")
        match = _LOCAL_TIME.match(start) if isinstance(start, str) else None
        if match is None:
            raise self.fail(where + "start", 'a local time "HH:MM" (quoted)', start)
        return DailyEntry(
            start=time(int(match[1]), int(match[2])),
            import_price=self.price(entry, "import_price", where),
            export_price=self.price(entry, "export_price", where),
        )

    def series_entry(self, entry: dict[str, Any], index: int) -> Price:
        where = f"series[{index}]."
        start = entry.get("start")
        if isinstance(start, datetime):
            moment: datetime | None = start
        elif isinstance(start, str):
            try:
                moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
            except ValueError:
                moment = None
        else:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise self.fail(where + "start", "an ISO 8601 time with a UTC offset", start)
        return Price(
            start=moment.astimezone(UTC),
            import_price=self.price(entry, "import_price", where),
            export_price=self.price(entry, "export_price", where),
        )
