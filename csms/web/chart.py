"""The session chart as server-rendered SVG: no script, no build step, no network.

Three stacked panels over one time axis: energy (import and export registers, kWh moved since
the first reading), power (kW, export drawn below zero) and state of charge (%).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

WIDTH, PANEL_H, LEFT, RIGHT, GAP = 760, 130, 64, 16, 34

Series = Sequence[tuple[datetime, float]]


def _panel(
    title: str,
    unit: str,
    lines: list[tuple[str, str, Series]],
    top: int,
    t0: datetime,
    span: float,
) -> list[str]:
    values = [v for _, _, points in lines for _, v in points] or [0.0]
    low, high = min(0.0, *values), max(0.0, *values)
    if high == low:
        high = low + 1.0
    inner = WIDTH - LEFT - RIGHT

    def x(at: datetime) -> float:
        return LEFT + inner * ((at - t0).total_seconds() / span if span else 0.0)

    def y(value: float) -> float:
        return top + PANEL_H - PANEL_H * (value - low) / (high - low)

    out = [
        f'<g class="panel" data-title="{escape(title)}">',
        f'<text x="4" y="{top - 8}" class="title">{escape(title)} ({escape(unit)})</text>',
        f'<rect x="{LEFT}" y="{top}" width="{inner}" height="{PANEL_H}" class="frame"/>',
        f'<line x1="{LEFT}" x2="{LEFT + inner}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="zero"/>',
        f'<text x="{LEFT - 6}" y="{top + 10}" class="tick">{high:.3g}</text>',
        f'<text x="{LEFT - 6}" y="{top + PANEL_H}" class="tick">{low:.3g}</text>',
    ]
    legend_x = LEFT + 8
    for name, colour, points in lines:
        if not points:
            continue
        coords = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in points)
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


def session_chart(series: dict[str, list[tuple[datetime, int]]]) -> str:
    """An ``<svg>`` of the session's energy, power and SoC; a note when there is nothing."""
    every = [at for points in series.values() for at, _ in points]
    if not every:
        return '<p class="empty">No meter samples were received for this session.</p>'
    t0, t1 = min(every), max(every)
    span = (t1 - t0).total_seconds()

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

    panels: list[tuple[str, str, list[tuple[str, str, Series]]]] = [
        (
            "Energy",
            "kWh since start",
            [
                ("import", "#1f6feb", delta_kwh("Energy.Active.Import.Register")),
                ("export", "#d9480f", delta_kwh("Energy.Active.Export.Register")),
            ],
        ),
        (
            "Power",
            "kW, discharging below zero",
            [("net power", "#6f42c1", net_kw())],
        ),
        (
            "State of charge",
            "%",
            [("SoC", "#2b8a3e", [(a, float(v)) for a, v in series.get("SoC", [])])],
        ),
    ]
    shown = [p for p in panels if any(points for _, _, points in p[2])]
    height = len(shown) * (PANEL_H + GAP) + 30
    body: list[str] = []
    for index, (title, unit, lines) in enumerate(shown):
        body += _panel(title, unit, lines, 24 + index * (PANEL_H + GAP), t0, span)
    axis_y = height - 8
    body.append(f'<text x="{LEFT}" y="{axis_y}" class="tick-l">{t0:%Y-%m-%d %H:%M:%S}Z</text>')
    body.append(f'<text x="{WIDTH - RIGHT}" y="{axis_y}" class="tick">{t1:%H:%M:%S}Z</text>')
    return (
        f'<svg id="session-chart" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"'
        f' aria-label="Energy, power and state of charge over the session">'
        "<style>.frame{fill:#fafafa;stroke:#ccc}.zero{stroke:#999;stroke-dasharray:3 3}"
        ".title{font:bold 12px sans-serif}.tick{font:11px sans-serif;text-anchor:end}"
        ".tick-l{font:11px sans-serif}.legend{font:12px sans-serif}</style>"
        + "".join(body)
        + "</svg>"
    )
