"""A month of the ledger: totals and lines per backend, model, series, character, creator and day.

Every figure comes from CostEntry rows through GROUP BY queries on the stored `day` column; no
Python loop runs over ledger rows, so the report stays fast at a million entries.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from generations.billing.models import CostEntry, CostKind, possibly_billed
from generations.billing.money import cents, money


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
    "possible": possibly_billed(),
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
    # Possibly billed by a provider that lost our create's answer, until an admin settles it: not in `net`.
    possible: Decimal = Decimal(0)

    @property
    def net(self) -> Decimal:
        return money(self.charged - self.refunded)

    def as_json(self, key: str) -> dict:
        return {
            key: self.label,
            "estimated_usd": cents(self.estimated),
            "charged_usd": cents(self.charged),
            "refunded_usd": cents(self.refunded),
            "net_usd": cents(self.net),
            "possibly_billed_usd": cents(self.possible),
            "videos": self.videos,
        }


def _lines(entries, path: str) -> list[Line]:
    rows = entries.values(path).annotate(**_TOTALS).order_by(path)
    return [
        Line(
            row[path] if row[path] not in (None, "") else "(none)",
            money(row["estimated"]),
            money(row["charged"]),
            money(row["refunded"]),
            row["videos"],
            money(row["possible"]),
        )
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
            "possibly_billed_usd": cents(self.total.possible),
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
        line.possible += group["possible"]
    for line in lines.values():
        line.estimated, line.charged, line.refunded = money(line.estimated), money(line.charged), money(line.refunded)
        line.possible = money(line.possible)
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


def version(user=None, year: int | None = None, month: int | None = None) -> str:
    """Changes whenever the month's ledger does: the page polls with it and gets 204 when unchanged.

    The ledger is append-only (rows are never edited or deleted), so the newest id says it all.
    """
    return str(month_entries(user, year, month).aggregate(last=Max("pk"))["last"] or 0)
