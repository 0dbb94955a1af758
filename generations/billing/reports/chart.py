"""The month's net spend per day, stacked by backend, as plain SVG geometry (no chart library)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Sum

from generations.billing.models import SpendingDay
from generations.billing.money import cents, money, usd
from generations.billing.reports.month import Month, month_rollup

PALETTE = ["#4f46e5", "#0d9488", "#d97706", "#db2777", "#2563eb", "#65a30d", "#7c3aed", "#dc2626"]


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    legend: list[tuple[str, str, Decimal]]  # (colour, backend, month net)
    gridlines: list[tuple[float, str]]  # (y, label)
    ticks: list[tuple[float, str]]  # (x, day label)
    empty: bool


def daily_chart(report: Month, user=None, width: int = 720, height: int = 220) -> Chart:
    """Net spend per day, stacked by backend, as plain SVG geometry (no chart library)."""
    rows = (
        month_rollup(user, report.year, report.month, SpendingDay)
        .values("day", "backend__name")
        .annotate(net=Sum(F("charged") - F("refunded")))
        .order_by()
    )
    backends = sorted({row["backend__name"] for row in rows})
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(backends)}
    per_day: dict = {}
    for row in rows:  # one row per (day, backend): at most 31 x backends
        per_day.setdefault(row["day"], {})[row["backend__name"]] = money(row["net"])
    top = max((sum(v for v in day.values() if v > 0) for day in per_day.values()), default=Decimal(0))
    left, bottom, plot_h = 48, 22, height - 30
    days = len(report.daily)
    slot = (width - left) / max(days, 1)
    scale = (plot_h / float(top)) if top > 0 else 0
    bars = []
    for index, line in enumerate(report.daily):
        day = datetime.date.fromisoformat(line.label)
        y = height - bottom
        for name in backends:
            value = per_day.get(day, {}).get(name, Decimal(0))
            if value <= 0:
                continue
            h = float(value) * scale
            y -= h
            bars.append(
                Bar(
                    round(left + index * slot + slot * 0.15, 1),
                    round(y, 1),
                    round(slot * 0.7, 1),
                    round(h, 1),
                    colour[name],
                    f"{line.label} · {name}: {cents(value)}",
                )
            )
    gridlines = []
    if top > 0:
        for step in range(5):
            value = top * step / 4
            gridlines.append((round(height - bottom - float(value) * scale, 1), usd(value)))
    ticks = [(round(left + i * slot + slot / 2, 1), str(i + 1)) for i in range(0, days, 5)]
    month_net = {line.label: line.net for line in report.by["backend"]}
    legend = [(colour[name], name, month_net.get(name, Decimal(0))) for name in backends]
    return Chart(width, height, bars, legend, gridlines, ticks, empty=top <= 0)
