"""What a job costs under a backend's price table (each protocol's default prices live in its package)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from generations.billing.money import money, usd
from generations.providers.models import Backend, Price, PriceUnit


class NoPrice(Exception):
    """The backend has no price row for this job: refuse rather than guess."""


@dataclass(frozen=True)
class Quote:
    amount: Decimal
    price: Price
    # When the provider bills: per-request backends on acceptance, per-second ones on completion.
    billed_on_accept: bool

    @property
    def describe(self) -> str:
        return f"{usd(self.amount)} ({rate(self.price)})"


def rate(price: Price) -> str:
    """A price row as people write it: $0.10/s, $0.12/video, $0.00/character."""
    unit = {PriceUnit.PER_SECOND: "s", PriceUnit.PER_REQUEST: "video", PriceUnit.PER_CHARACTER: "character"}
    return f"{usd(price.amount)}/{unit[price.unit]}"


def quote(backend: Backend, model: str, seconds: str | int, size: str, at=None) -> Quote:
    """What one video costs on `backend`: a per-request price wins if the backend has one."""
    price = backend.price_for(PriceUnit.PER_REQUEST, model=model, size=size, at=at) or backend.price_for(
        PriceUnit.PER_SECOND, model=model, size=size, at=at
    )
    if price is not None and price.amount < 0:  # saved around the model's validation: never quote it
        raise NoPrice(f"{backend.name} has a negative price for {model}; an admin must fix it.")
    if price is not None:
        return quote_with(price, seconds)
    raise NoPrice(f"{backend.name} has no price for {model} at {size}; an admin must add one.")


def quote_with(price: Price, seconds: str | int) -> Quote:
    """What one video costs under a given price row."""
    if price.unit == PriceUnit.PER_REQUEST:
        return Quote(money(price.amount), price, billed_on_accept=True)
    return Quote(money(price.amount * int(seconds)), price, billed_on_accept=False)


def character_fee(backend: Backend, at=None) -> tuple[Decimal, Price | None]:
    price = backend.price_for(PriceUnit.PER_CHARACTER, at=at)
    return (money(price.amount) if price else money(0)), price
