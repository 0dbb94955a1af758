"""An API token's own monthly spending cap, on top of the studio's budgets.

What counts is what budgets count (charges minus refunds plus the estimate of every job still running
and not charged), for the videos this token made this month. The check runs in the transaction that
records the new video's estimate, after the token's row is locked, so a script firing creates in
parallel cannot slip past the cap.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from generations.billing.budgets import committed_in
from generations.billing.models import CostEntry
from generations.billing.money import money
from generations.gateway.models import ApiToken


class CapExceeded(ValueError):
    """The token's monthly cap refuses this video; the message says by how much."""


def committed(token: ApiToken) -> Decimal:
    """What the token's videos commit this calendar month."""
    today = timezone.localdate()
    return committed_in(CostEntry.objects.in_month(today.year, today.month).filter(generation__api_link__token=token))


def lock(token: ApiToken) -> None:
    """Hold the token's row until the transaction ends (PostgreSQL; SQLite holds its write lock from BEGIN)."""
    ApiToken.objects.select_for_update().filter(pk=token.pk).first()


def check(token: ApiToken, amount: Decimal) -> None:
    """Call after the new video's estimate is recorded (it is part of `committed`), inside that transaction."""
    if token.monthly_cap is None:
        return
    after = committed(token)
    if after <= token.monthly_cap:
        return
    over = money(after - token.monthly_cap)
    raise CapExceeded(
        f"This ${amount:.2f} video would take the monthly cap of the API token “{token.name}” "
        f"(${token.monthly_cap:.2f}) over by ${over:.2f}. Nothing was sent."
    )
