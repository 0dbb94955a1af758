"""Where the money went: the month's ledger aggregated in the database, re-priced elsewhere, projected.

Every figure here comes from CostEntry rows through GROUP BY queries on the stored `day` column;
no Python loop runs over ledger rows, so the report stays fast at a million entries.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from generations.models import Backend, CostEntry, CostKind, money
from generations.pricing import NoPrice, quote

CENTS = Decimal("0.01")


def usd(value: Decimal) -> str:
    return f"{Decimal(value).quantize(CENTS)}"


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
    "videos": Count("generation", filter=Q(kind=CostKind.CHARGE), distinct=True),
}

# Report dimension → the ledger path that names it.
DIMENSIONS = {
    "backend": "backend__name",
    "model": "generation__model",
    "series": "generation__scene__series__title",
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
        return {key: self.label, "estimated_usd": usd(self.estimated), "charged_usd": usd(self.charged),
                "refunded_usd": usd(self.refunded), "net_usd": usd(self.net), "videos": self.videos}


def _lines(entries, path: str) -> list[Line]:
    rows = entries.values(path).annotate(**_TOTALS).order_by(path)
    return [
        Line(row[path] if row[path] is not None else "(none)", money(row["estimated"]), money(row["charged"]),
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
            "estimated_usd": usd(self.total.estimated),
            "charged_usd": usd(self.total.charged),
            "refunded_usd": usd(self.total.refunded),
            "net_usd": usd(self.total.net),
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


def month_report(user=None, year: int | None = None, month: int | None = None, *, staff_view: bool = False) -> Month:
    """The month for one creator (user) or everyone (user=None); `staff_view` adds the per-user lines."""
    if year is None or month is None:
        year, month = parse_month(None)
    entries = month_entries(user, year, month)
    totals = entries.aggregate(**_TOTALS)
    total = Line("Total", money(totals["estimated"]), money(totals["charged"]), money(totals["refunded"]),
                 totals["videos"])
    by = {name: _lines(entries, path) for name, path in DIMENSIONS.items() if name != "user" or staff_view}
    days = {line.label: line for line in _lines(entries, "day")}
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
    entries = month_entries(user, year, month).filter(kind=CostKind.CHARGE, generation__isnull=False)
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


def write_csv(stream, entries) -> None:
    writer = csv.writer(stream)
    writer.writerow(CSV_HEADER)
    rows = entries.select_related("backend", "owner", "generation", "price").order_by("created_at", "pk")
    for e in rows.iterator(chunk_size=2000):
        g = e.generation
        writer.writerow([
            e.day.isoformat(), e.created_at.isoformat(), e.kind, f"{e.amount:f}", e.backend.name,
            g.model if g else "", g.seconds if g else "", g.size if g else "", e.generation_id or "",
            e.binding_id or "", e.owner.get_username(), str(e.price) if e.price else "", e.note,
        ])
