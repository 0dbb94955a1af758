"""A month of the ledger: totals and lines per backend, model, series, character, creator and day.

Every figure comes from the roll-ups (billing.models: the ledger summed in the transaction of each
entry): a GROUP BY per breakdown over the month's few hundred SpendingMonth rows, one over its
SpendingDay rows for the days, however many entries the month holds.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from generations.billing.models import CharacterSpendingMonth, CostEntry, SpendingDay, SpendingMonth
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
    "estimated": Sum("estimated", default=0),
    "charged": Sum("charged", default=0),
    "refunded": Sum("refunded", default=0),
    "possible": Sum("possible", default=0),
    "settled": Sum("settled", default=0),
    "videos": Sum("videos", default=0),  # charges of a job: one per video (a ledger constraint)
}

# Report dimension → the roll-up path that names it. Characters have a roll-up of their own: a video
# with two characters counts for both, so they cannot share a row with the other dimensions.
DIMENSIONS = {
    "backend": "backend__name",
    "model": "model",
    "series": "series__title",
    "character": "character__handle",
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


def _line(label, row: dict) -> Line:
    """A line from summed roll-up columns; possibly billed is what is not settled yet."""
    return Line(
        label if label not in (None, "") else "(none)",
        money(row["estimated"]),
        money(row["charged"]),
        money(row["refunded"]),
        row["videos"],
        money(row["possible"] - row["settled"]),
    )


def _lines(rows: list[dict], path: str) -> list[Line]:
    """A line per label, summed over the month's roll-up rows (a few hundred), in label order. Two
    labels that read the same (two creators' series called "Pilot"; no model and no series) are one."""
    merged: dict[str, dict] = {}
    for row in rows:
        sums = merged.setdefault(row[path] if row[path] not in (None, "") else "(none)", dict.fromkeys(_TOTALS, 0))
        for name in _TOTALS:
            sums[name] += row[name]
    return sorted((_line(label, sums) for label, sums in merged.items()), key=lambda line: str(line.label))


def _add(into: Line, line: Line) -> None:
    into.estimated += line.estimated
    into.charged += line.charged
    into.refunded += line.refunded
    into.videos += line.videos
    into.possible += line.possible


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


def _month(model, user, year: int | None, month: int | None):
    """`model`'s rows of the month (the ledger, a daily or a monthly roll-up), one creator's or everyone's."""
    if year is None or month is None:
        year, month = parse_month(None)
    first = datetime.date(year, month, 1)
    if any(f.name == "month" for f in model._meta.fields):
        rows = model.objects.filter(month=first)
    else:
        rows = model.objects.filter(day__gte=first, day__lt=datetime.date(*shift_month(year, month, 1), 1))
    return rows.filter(owner=user) if user is not None else rows


def month_entries(user=None, year: int | None = None, month: int | None = None):
    """The month's ledger entries, one by one (the CSV)."""
    return _month(CostEntry, user, year, month)


def month_rollup(user=None, year: int | None = None, month: int | None = None, model=SpendingMonth):
    """The month's rows of a roll-up (SpendingMonth unless `model` says otherwise)."""
    return _month(model, user, year, month)


def month_report(user=None, year: int | None = None, month: int | None = None, *, staff_view: bool = False) -> Month:
    """The month for one creator (user) or everyone (user=None); `staff_view` adds the per-user lines."""
    if year is None or month is None:
        year, month = parse_month(None)
    # One row per creator, backend, model and series of the month: fetched once (a few hundred), summed
    # here along each breakdown. Characters have rows of their own.
    flat = [name for name in DIMENSIONS if name != "character" and (name != "user" or staff_view)]
    rows = list(month_rollup(user, year, month).values(*(DIMENSIONS[name] for name in flat), *_TOTALS))
    by = {name: _lines(rows, DIMENSIONS[name]) for name in flat}
    characters = month_rollup(user, year, month, CharacterSpendingMonth).values(DIMENSIONS["character"], *_TOTALS)
    by["character"] = _lines(list(characters), DIMENSIONS["character"])
    by = {name: by[name] for name in DIMENSIONS if name in by}  # the page's order
    total = Line("Total")
    for line in by["backend"]:  # every entry has a backend: its lines add up to the month
        _add(total, line)
    days = month_rollup(user, year, month, SpendingDay).values("day").annotate(**_TOTALS).order_by()
    days = {row["day"]: _line(row["day"], row) for row in days}
    first = datetime.date(year, month, 1)
    length = (datetime.date(*shift_month(year, month, 1), 1) - first).days
    daily = []
    for offset in range(length):
        day = first + datetime.timedelta(days=offset)
        line = days.get(day) or Line(day)
        line.label = day.isoformat()
        daily.append(line)
    return Month(year, month, total, by, daily)


def version(user=None, year: int | None = None, month: int | None = None) -> str:
    """Changes whenever the month's figures do: the page polls with it and gets 204 when unchanged.

    A digest of the month's sums per backend and series: a new entry changes a count, a fallback's
    moved estimate two backends' amounts, a deleted series which line its money is on."""
    sums = {name: Sum(name) for name in ("entries", "estimated", "charged", "refunded", "possible", "settled")}
    rows = month_rollup(user, year, month).values("backend_id", "series_id").annotate(**sums).order_by()
    figures = sorted(repr(sorted(row.items())) for row in rows)
    return hashlib.sha1("\n".join(figures).encode(), usedforsecurity=False).hexdigest()[:16]
