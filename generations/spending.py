"""What a creator spent: charges minus refunds, aggregated in the database."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from generations.models import CostEntry, CostKind, money


@dataclass
class Line:
    backend: str
    charged: Decimal
    refunded: Decimal
    estimated: Decimal
    jobs: int

    @property
    def net(self) -> Decimal:
        return money(self.charged - self.refunded)


@dataclass
class Month:
    year: int
    month: int
    lines: list[Line]

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def charged(self) -> Decimal:
        return money(sum((line.charged for line in self.lines), Decimal(0)))

    @property
    def refunded(self) -> Decimal:
        return money(sum((line.refunded for line in self.lines), Decimal(0)))

    @property
    def net(self) -> Decimal:
        return money(self.charged - self.refunded)

    def as_json(self) -> dict:
        def usd(value):
            return f"{value.quantize(Decimal('0.01'))}"

        return {
            "month": self.label,
            "charged_usd": usd(self.charged),
            "refunded_usd": usd(self.refunded),
            "net_usd": usd(self.net),
            "backends": [
                {"backend": line.backend, "charged_usd": usd(line.charged), "refunded_usd": usd(line.refunded),
                 "net_usd": usd(line.net), "estimated_usd": usd(line.estimated), "generations": line.jobs}
                for line in self.lines
            ],
        }


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


def month_report(user=None, year: int | None = None, month: int | None = None) -> Month:
    if year is None or month is None:
        year, month = parse_month(None)
    entries = CostEntry.objects.in_month(year, month)
    if user is not None:
        entries = entries.for_user(user)
    rows = (
        entries.values("backend__name")
        .annotate(
            charged=Sum("amount", filter=Q(kind=CostKind.CHARGE), default=0),
            refunded=Sum("amount", filter=Q(kind=CostKind.REFUND), default=0),
            estimated=Sum("amount", filter=Q(kind=CostKind.ESTIMATE), default=0),
            jobs=Count("generation", filter=Q(kind=CostKind.ESTIMATE), distinct=True),
        )
        .order_by("backend__name")
    )
    lines = [Line(r["backend__name"], money(r["charged"]), money(r["refunded"]), money(r["estimated"]), r["jobs"])
             for r in rows]
    return Month(year, month, lines)
