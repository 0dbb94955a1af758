"""What the month's videos would have cost on every other backend, at today's prices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef

from generations.billing.models import CostEntry, CostKind
from generations.billing.money import money
from generations.billing.pricing import NoPrice, quote
from generations.billing.reports.month import month_entries
from generations.providers.models import Backend


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
    entries = (
        month_entries(user, year, month)
        .filter(kind=CostKind.CHARGE, generation__isnull=False)
        .exclude(Exists(refunded))
    )
    actual = month_entries(user, year, month).filter(generation__isnull=False).net()
    # One row per distinct kind of video, however many videos: the pricing loop is over groups.
    groups = list(
        entries.values("generation__model", "generation__seconds", "generation__size").annotate(
            videos=Count("generation", distinct=True)
        )
    )
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
