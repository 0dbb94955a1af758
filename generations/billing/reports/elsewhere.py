"""What the month's videos would have cost on every other backend, at today's prices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from generations.billing.models import VideoSpendingMonth
from generations.billing.money import money
from generations.billing.pricing import NoPrice, quote
from generations.billing.reports.month import month_rollup
from generations.providers.models import Backend


@dataclass
class Elsewhere:
    backend: Backend
    total: Decimal | None  # None: this backend has no price for some of the videos
    missing: list[str]
    multiple: Decimal | None  # elsewhere / actual


def elsewhere(user=None, year: int | None = None, month: int | None = None) -> tuple[Decimal, list[Elsewhere]]:
    """The month's charged videos re-priced on every enabled backend's current price table."""
    videos = month_rollup(user, year, month, VideoSpendingMonth)
    # What was paid for videos (character fees are not work to re-price).
    actual = money(videos.aggregate(net=Sum("net", default=0))["net"])
    # Videos delivered and paid for, one row per kind of video however many: a failed job that was
    # refunded is not work to re-price (the roll-up's `kept`).
    groups = list(
        videos.values("model", "seconds", "size").annotate(videos=Sum("kept")).filter(videos__gt=0).order_by()
    )
    results = []
    for backend in Backend.objects.enabled().with_prices():
        total, missing = Decimal(0), []
        for group in groups:
            model, seconds, size = group["model"], group["seconds"], group["size"]
            try:
                total += quote(backend, model, seconds, size).amount * group["videos"]
            except NoPrice:
                missing.append(f"{model} {size}")
        priced = money(total) if not missing else None
        multiple = (priced / actual).quantize(Decimal("0.1")) if priced is not None and actual else None
        results.append(Elsewhere(backend, priced, missing, multiple))
    return actual, results
