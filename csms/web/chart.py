"""The session chart as server-rendered SVG: no script, no build step, no network.

Three stacked panels over one time axis: energy (import and export registers, kWh moved since
the first reading), power (kW, export drawn below zero) and state of charge (%). Time ticks
(UTC, at a round step giving at most ``MAX_TICKS``) and the tariff interval boundaries run
through every panel; the SoC panel spans 0-100 % and carries the EV's target and the
dispatcher's reserve as horizontal lines, and the departure time as a vertical one, when known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

WIDTH, PANEL_H, LEFT, RIGHT, GAP = 760, 130, 64, 16, 34
MAX_TICKS = 8
TICK_STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

Series = Sequence[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class SocMarks:
    """What the SoC panel marks beside the readings (each None when unknown)."""

    target_pct: float | None = None
    reserve_pct: float | None = None
    departure: datetime | None = None
    target_energy_wh: int | None = None  # what the EV asked for by its departure (not drawn)


@dataclass(frozen=True, slots=True)
class _Axis:
    t0: datetime
    span: float

    def x(self, at: datetime) -> float:
        inner = WIDTH - LEFT - RIGHT
        return LEFT + inner * ((at - self.t0).total_seconds() / self.span if self.span else 0.0)

    def covers(self, at: datetime) -> bool:
        return self.t0 <= at <= self.t0 + timedelta(seconds=self.span)


def time_ticks(t0: datetime, t1: datetime) -> list[datetime]:
    """Round UTC instants within [t0, t1] at the smallest listed step giving <= MAX_TICKS."""
    span = (t1 - t0).total_seconds()
    step = next((s for s in TICK_STEPS_S if span / s <= MAX_TICKS), None)
    if step is None:  # longer than 8 days: whole days, thinned
        step = 86400 * (int(span // (86400 * MAX_TICKS)) + 1)
    epoch = int(t0.timestamp())
    first = -(-epoch // step) * step
    return [datetime.fromtimestamp(s, UTC) for s in range(first, int(t1.timestamp()) + 1, step)]


def _tick_label(at: datetime, step_s: float) -> str:
    return f"{at:%m-%d}" if step_s >= 86400 and at.hour == at.minute == 0 else f"{at:%H:%M}"


def _panel(
    title: str,
    unit: str,
    lines: list[tuple[str, str, Series]],
    top: int,
    axis: _Axis,
    *,
    fixed: tuple[float, float] | None = None,
    levels: Sequence[tuple[str, str, float]] = (),
) -> list[str]:
    values = [v for _, _, points in lines for _, v in points] or [0.0]
    low, high = fixed or (min(0.0, *values), max(0.0, *values))
    if high == low:
        high = low + 1.0
    inner = WIDTH - LEFT - RIGHT

    def y(value: float) -> float:
        return top + PANEL_H - PANEL_H * (value - low) / (high - low)

    out = [
        f'<g class="panel" data-title="{escape(title)}">',
        f'<text x="4" y="{top - 8}" class="title">{escape(title)} ({escape(unit)})</text>',
        f'<rect x="{LEFT}" y="{top}" width="{inner}" height="{PANEL_H}" class="frame"'
        ' fill="none"/>',
        f'<line x1="{LEFT}" x2="{LEFT + inner}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="zero"/>',
        f'<text x="{LEFT - 6}" y="{top + 10}" class="tick">{high:.3g}</text>',
        f'<text x="{LEFT - 6}" y="{top + PANEL_H}" class="tick">{low:.3g}</text>',
    ]
    for name, colour, value in levels:
        at = y(min(max(value, low), high))
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + inner}" y1="{at:.1f}" y2="{at:.1f}" stroke="{colour}"'
            f' class="level" data-level="{escape(name)}" data-value="{value:g}"/>'
        )
        out.append(
            f'<text x="{LEFT + inner - 4}" y="{at - 3:.1f}" fill="{colour}" class="tick">'
            f"{escape(name)} {value:g}</text>"
        )
    legend_x = LEFT + 8
    for name, colour, points in lines:
        if not points:
            continue
        coords = " ".join(f"{axis.x(at):.1f},{y(v):.1f}" for at, v in points)
        out.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"'
            f' data-series="{escape(name)}" data-points="{len(points)}"/>'
        )
        out.append(
            f'<text x="{legend_x}" y="{top + 14}" fill="{colour}" class="legend">'
            f"{escape(name)}</text>"
        )
        legend_x += 9 * len(name) + 24
    out.append("</g>")
    return out


def _verticals(
    axis: _Axis,
    top: int,
    bottom: int,
    ticks: Sequence[datetime],
    boundaries: Sequence[datetime],
    departure: datetime | None,
) -> list[str]:
    """Time grid and labels, tariff boundaries and departure, through every panel."""
    step = (ticks[1] - ticks[0]).total_seconds() if len(ticks) > 1 else axis.span
    out = []
    for at in ticks:
        x = axis.x(at)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" class="grid"'
            f' data-tick="{at:%Y-%m-%dT%H:%M}Z"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 14}" class="tick-c">{_tick_label(at, step)}</text>'
        )
    for at in boundaries:
        if not axis.covers(at):
            continue
        x = axis.x(at)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 14}" y2="{bottom}" class="boundary"'
            f' data-boundary="{at:%Y-%m-%dT%H:%M:%S}Z"/>'
        )
        out.append(f'<text x="{x + 3:.1f}" y="{top - 4}" class="note">tariff {at:%H:%M}</text>')
    if departure is not None and axis.covers(departure):
        x = axis.x(departure)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" class="departure"'
            f' data-departure="{departure:%Y-%m-%dT%H:%M:%S}Z"/>'
        )
        out.append(f'<text x="{x - 3:.1f}" y="{bottom - 4}" class="tick">departure</text>')
    return out


def session_chart(
    series: dict[str, list[tuple[datetime, int]]],
    *,
    boundaries: Sequence[datetime] = (),
    marks: SocMarks = SocMarks(),
) -> str:
    """An ``<svg>`` of the session's energy, power and SoC; a note when there is nothing.

    ``boundaries`` are the instants the tariff changes price (those inside the session are drawn).
    """
    every = [at for points in series.values() for at, _ in points]
    if not every:
        return '<p class="empty">No meter samples were received for this session.</p>'
    t0, t1 = min(every), max(every)
    axis = _Axis(t0, (t1 - t0).total_seconds())

    def delta_kwh(name: str) -> list[tuple[datetime, float]]:
        points = series.get(name, [])
        return [(at, (v - points[0][1]) / 1000) for at, v in points] if points else []

    def net_kw() -> list[tuple[datetime, float]]:
        by_time: dict[datetime, float] = {}
        for at, v in series.get("Power.Active.Import", []):
            by_time[at] = by_time.get(at, 0.0) + v / 1000
        for at, v in series.get("Power.Active.Export", []):
            by_time[at] = by_time.get(at, 0.0) - v / 1000
        return sorted(by_time.items())

    levels = [
        (name, colour, value)
        for name, colour, value in (
            ("target", "#2b8a3e", marks.target_pct),
            ("reserve", "#c92a2a", marks.reserve_pct),
        )
        if value is not None
    ]
    soc = [(a, float(v)) for a, v in series.get("SoC", [])]
    panels: list[tuple[str, str, list[tuple[str, str, Series]]]] = [
        (
            "Energy",
            "kWh since start",
            [
                ("import", "#1f6feb", delta_kwh("Energy.Active.Import.Register")),
                ("export", "#d9480f", delta_kwh("Energy.Active.Export.Register")),
            ],
        ),
        ("Power", "kW, discharging below zero", [("net power", "#6f42c1", net_kw())]),
        ("State of charge", "%", [("SoC", "#2b8a3e", soc)]),
    ]
    shown = [p for p in panels if any(points for _, _, points in p[2])]
    height = len(shown) * (PANEL_H + GAP) + 40
    tops = [24 + index * (PANEL_H + GAP) for index in range(len(shown))]
    inner = WIDTH - LEFT - RIGHT
    # backgrounds first, then the time grid, then the lines on top of both
    body = [
        f'<rect x="{LEFT}" y="{t}" width="{inner}" height="{PANEL_H}" class="bg"/>' for t in tops
    ]
    bottom = tops[-1] + PANEL_H
    body += _verticals(axis, 24, bottom, time_ticks(t0, t1), boundaries, marks.departure)
    for top, (title, unit, lines) in zip(tops, shown, strict=True):
        if title == "State of charge":
            body += _panel(title, unit, lines, top, axis, fixed=(0.0, 100.0), levels=levels)
        else:
            body += _panel(title, unit, lines, top, axis)
    body.append(
        f'<text x="{LEFT}" y="{height - 4}" class="tick-l">{t0:%Y-%m-%d %H:%M:%S} to'
        f" {t1:%Y-%m-%d %H:%M:%S} UTC</text>"
    )
    return (
        f'<svg id="session-chart" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"'
        f' aria-label="Energy, power and state of charge over the session">'
        + "".join(body)
        + "</svg>"
    )
