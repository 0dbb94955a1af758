"""Where the money went: the month's ledger aggregated in the database, re-priced elsewhere, projected.

Every figure here comes from CostEntry rows through GROUP BY queries on the stored `day` column;
no Python loop runs over ledger rows, so the report stays fast at a million entries.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from generations.billing.models import CostEntry, CostKind
from generations.billing.money import cents, money
from generations.billing.pricing import NoPrice, quote
from generations.providers.models import Backend


def parse_month(value: str | None) -> tuple[int, int]:
    """'YYYY-MM' → (year, month); None → this month. ValueError with a clear message otherwise."""
    if not value:
        today = timezone.localdate()
        return today.year, today.month
    try:
        year, month = (int(part) for part in value.split("-"))
        if not (1 <= month <= 12 and 2000 <= year <= 9999):
            raise ValueError
    except ValueError:
        raise ValueError(f"{value!r} is not a month; write it as YYYY-MM, e.g. 2026-11.") from None
    return year, month


def shift_month(year: int, month: int, offset: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + offset
    return index // 12, index % 12 + 1


_TOTALS = {
    "estimated": Sum("amount", filter=Q(kind=CostKind.ESTIMATE), default=0),
    "charged": Sum("amount", filter=Q(kind=CostKind.CHARGE), default=0),
    "refunded": Sum("amount", filter=Q(kind=CostKind.REFUND), default=0),
    # One charge per video (a database constraint), so counting charge rows counts videos, without
    # the sort a COUNT(DISTINCT) costs.
    "videos": Count("pk", filter=Q(kind=CostKind.CHARGE, generation__isnull=False)),
}

# Report dimension → the ledger path that names it.
DIMENSIONS = {
    "backend": "backend__name",
    "model": "model",
    "series": "series__title",
    "character": "generation__characters__handle",
    "user": "owner__username",
}


@dataclass
class Line:
    label: str
    estimated: Decimal = Decimal(0)
    charged: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    videos: int = 0

    @property
    def net(self) -> Decimal:
        return money(self.charged - self.refunded)

    def as_json(self, key: str) -> dict:
        return {key: self.label, "estimated_usd": cents(self.estimated), "charged_usd": cents(self.charged),
                "refunded_usd": cents(self.refunded), "net_usd": cents(self.net), "videos": self.videos}


def _lines(entries, path: str) -> list[Line]:
    rows = entries.values(path).annotate(**_TOTALS).order_by(path)
    return [
        Line(row[path] if row[path] not in (None, "") else "(none)", money(row["estimated"]), money(row["charged"]),
             money(row["refunded"]), row["videos"])
        for row in rows
    ]


@dataclass
class Month:
    year: int
    month: int
    total: Line
    by: dict[str, list[Line]]
    daily: list[Line] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def lines(self) -> list[Line]:
        return self.by["backend"]

    @property
    def charged(self) -> Decimal:
        return self.total.charged

    @property
    def refunded(self) -> Decimal:
        return self.total.refunded

    @property
    def net(self) -> Decimal:
        return self.total.net

    def as_json(self) -> dict:
        data = {
            "month": self.label,
            "estimated_usd": cents(self.total.estimated),
            "charged_usd": cents(self.total.charged),
            "refunded_usd": cents(self.total.refunded),
            "net_usd": cents(self.total.net),
            "videos": self.total.videos,
            "backends": [line.as_json("backend") for line in self.by["backend"]],
        }
        for dimension, lines in self.by.items():
            if dimension != "backend":
                data[f"by_{dimension}"] = [line.as_json(dimension) for line in lines]
        data["daily"] = [line.as_json("day") for line in self.daily]
        return data


def month_entries(user=None, year: int | None = None, month: int | None = None):
    if year is None or month is None:
        year, month = parse_month(None)
    entries = CostEntry.objects.in_month(year, month)
    return entries.filter(owner=user) if user is not None else entries


def _cube(entries, paths: list[str]) -> list[dict]:
    """One GROUP BY over every dimension at once: a row per distinct combination, not per entry.

    Each charge belongs to exactly one combination, so per-group video counts add up correctly.
    """
    return list(entries.values(*paths).annotate(**_TOTALS).order_by())


def _roll_up(groups: list[dict], path: str) -> list[Line]:
    """Sum the cube's groups along one dimension (a loop over a few groups, never over entries)."""
    lines: dict = {}
    for group in groups:
        label = group[path] if group[path] not in (None, "") else "(none)"
        line = lines.setdefault(label, Line(label))
        line.estimated += group["estimated"]
        line.charged += group["charged"]
        line.refunded += group["refunded"]
        line.videos += group["videos"]
    for line in lines.values():
        line.estimated, line.charged, line.refunded = money(line.estimated), money(line.charged), money(line.refunded)
    return sorted(lines.values(), key=lambda line: str(line.label))


def month_report(user=None, year: int | None = None, month: int | None = None, *, staff_view: bool = False) -> Month:
    """The month for one creator (user) or everyone (user=None); `staff_view` adds the per-user lines."""
    if year is None or month is None:
        year, month = parse_month(None)
    entries = month_entries(user, year, month)
    # Character is many-to-many (a video with two characters counts for both), so it cannot share
    # the cube; every other dimension and the days come from one scan of the month.
    flat = [name for name in DIMENSIONS if name != "character" and (name != "user" or staff_view)]
    groups = _cube(entries, [DIMENSIONS[name] for name in flat] + ["day"])
    by = {name: _roll_up(groups, DIMENSIONS[name]) for name in flat}
    by["character"] = _lines(entries, DIMENSIONS["character"])
    by = {name: by[name] for name in DIMENSIONS if name in by}  # the page's order
    total = _roll_up([{**g, "all": "Total"} for g in groups], "all")
    total = total[0] if total else Line("Total")
    days = {line.label: line for line in _roll_up(groups, "day")}
    first = datetime.date(year, month, 1)
    next_year, next_month = shift_month(year, month, 1)
    length = (datetime.date(next_year, next_month, 1) - first).days
    daily = []
    for offset in range(length):
        day = first + datetime.timedelta(days=offset)
        line = days.get(day) or Line(day)
        line.label = day.isoformat()
        daily.append(line)
    return Month(year, month, total, by, daily)


# --- What the same work would have cost elsewhere -------------------------------------------

@dataclass
class Elsewhere:
    backend: Backend
    total: Decimal | None  # None: this backend has no price for some of the videos
    missing: list[str]
    multiple: Decimal | None  # elsewhere / actual


def elsewhere(user=None, year: int | None = None, month: int | None = None) -> tuple[Decimal, list[Elsewhere]]:
    """The month's charged videos re-priced on every enabled backend's current price table."""
    refunded = CostEntry.objects.filter(generation=OuterRef("generation"), kind=CostKind.REFUND)
    # Videos delivered and paid for; a failed job that was refunded is not work to re-price.
    entries = month_entries(user, year, month).filter(kind=CostKind.CHARGE, generation__isnull=False).exclude(
        Exists(refunded))
    actual = money(month_entries(user, year, month).filter(generation__isnull=False).aggregate(
        net=Sum("amount", filter=Q(kind=CostKind.CHARGE), default=0)
        - Sum("amount", filter=Q(kind=CostKind.REFUND), default=0))["net"])
    # One row per distinct kind of video, however many videos: the pricing loop is over groups.
    groups = list(entries.values("generation__model", "generation__seconds", "generation__size")
                  .annotate(videos=Count("generation", distinct=True)))
    results = []
    for backend in Backend.objects.enabled().prefetch_related("prices"):
        total, missing = Decimal(0), []
        for group in groups:
            model, seconds, size = group["generation__model"], group["generation__seconds"], group["generation__size"]
            try:
                total += quote(backend, model, seconds, size).amount * group["videos"]
            except NoPrice:
                missing.append(f"{model} {size}")
        priced = money(total) if not missing else None
        multiple = (priced / actual).quantize(Decimal("0.1")) if priced is not None and actual else None
        results.append(Elsewhere(backend, priced, missing, multiple))
    return actual, results


# --- Projection -----------------------------------------------------------------------------

@dataclass
class Projection:
    backend: Backend
    model: str
    size: str
    per_video: Decimal
    monthly: Decimal
    yearly: Decimal
    basis: str


def projection(videos: int, seconds: int) -> list[Projection]:
    """N videos a month of D seconds, on every enabled backend, model and size price tier."""
    rows = []
    for backend in Backend.objects.enabled().prefetch_related("prices"):
        for model, offer in backend.offer().items():
            seen = set()
            for size in offer.get("sizes", []):
                try:
                    price = quote(backend, model, seconds, size)
                except NoPrice:
                    continue
                if price.price.pk in seen:
                    continue  # same price row as a size already listed
                seen.add(price.price.pk)
                monthly = money(price.amount * videos)
                rows.append(Projection(backend, model, size, price.amount, monthly, money(monthly * 12),
                                       price.price.get_unit_display()))
    rows.sort(key=lambda r: (r.monthly, r.backend.name, r.model))
    return rows


# --- CSV ------------------------------------------------------------------------------------

CSV_HEADER = ["day", "time", "kind", "amount_usd", "backend", "model", "seconds", "size", "generation",
              "character_binding", "user", "price", "note"]


class _Line:
    """A file-like that hands back what csv.writer writes, so rows can be streamed one by one."""

    def write(self, value):
        return value


def csv_lines(entries):
    """The entries as CSV text, a row at a time (for StreamingHttpResponse and the command)."""
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_HEADER)
    rows = entries.select_related("backend", "owner", "generation", "price").order_by("created_at", "pk")
    for e in rows.iterator(chunk_size=2000):
        g = e.generation
        yield writer.writerow([
            e.day.isoformat(), e.created_at.isoformat(), e.kind, f"{e.amount:f}", e.backend.name,
            g.model if g else "", g.seconds if g else "", g.size if g else "", e.generation_id or "",
            e.binding_id or "", e.owner.get_username(), str(e.price) if e.price else "", e.note,
        ])


def write_csv(stream, entries) -> None:
    for line in csv_lines(entries):
        stream.write(line)


# --- The daily chart ------------------------------------------------------------------------

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
    entries = month_entries(user, report.year, report.month)
    rows = entries.values("day", "backend__name").annotate(
        net=Sum("amount", filter=Q(kind=CostKind.CHARGE), default=0)
        - Sum("amount", filter=Q(kind=CostKind.REFUND), default=0)
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
            bars.append(Bar(round(left + index * slot + slot * 0.15, 1), round(y, 1), round(slot * 0.7, 1),
                            round(h, 1), colour[name], f"{line.label} · {name}: {cents(value)}"))
    gridlines = []
    if top > 0:
        for step in range(5):
            value = top * step / 4
            gridlines.append((round(height - bottom - float(value) * scale, 1), f"${value:.2f}"))
    ticks = [(round(left + i * slot + slot / 2, 1), str(i + 1)) for i in range(0, days, 5)]
    month_net = {line.label: line.net for line in report.by["backend"]}
    legend = [(colour[name], name, month_net.get(name, Decimal(0))) for name in backends]
    return Chart(width, height, bars, legend, gridlines, ticks, empty=top <= 0)


def version(user=None, year: int | None = None, month: int | None = None) -> str:
    """Changes whenever the month's ledger does: the page polls with it and gets 204 when unchanged.

    The ledger is append-only (rows are never edited or deleted), so the newest id says it all.
    """
    from django.db.models import Max

    return str(month_entries(user, year, month).aggregate(last=Max("pk"))["last"] or 0)
