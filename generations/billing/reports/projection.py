"""N videos a month of D seconds: what they cost on every backend, model and size price tier."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from generations.billing.money import money
from generations.billing.pricing import NoPrice, quote
from generations.providers.models import Backend


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
    for backend in Backend.objects.enabled().with_prices():
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
                rows.append(
                    Projection(
                        backend, model, size, price.amount, monthly, money(monthly * 12), price.price.get_unit_display()
                    )
                )
    rows.sort(key=lambda r: (r.monthly, r.backend.name, r.model))
    return rows
