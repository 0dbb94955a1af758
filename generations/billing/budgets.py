"""Monthly caps that hold under concurrency.

What counts against a cap is the month's money committed: charges minus refunds, plus the estimate
of every job still running that has not been charged yet, plus what is possibly billed and not
settled. The check and the job's own estimate are written in one transaction that first locks the
applicable Budget rows (PostgreSQL), or holds SQLite's write lock from BEGIN (IMMEDIATE), so parallel
submissions are counted one after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from generations.billing.models import Budget, CostEntry, CostKind, SpendingMonth, net, possibly_billed
from generations.billing.money import money
from generations.states import ACTIVE

NEAR_PERCENT = 80


class BudgetExceeded(ValueError):
    pass


@dataclass(frozen=True)
class BudgetUse:
    budget: Budget
    committed: Decimal

    @property
    def left(self) -> Decimal:
        return money(self.budget.amount - self.committed)

    @property
    def over(self) -> Decimal:
        return max(money(self.committed - self.budget.amount), Decimal(0))

    @property
    def percent(self) -> int:
        return int(100 * self.committed / self.budget.amount) if self.budget.amount else 100

    @property
    def shared(self) -> bool:
        """The cap counts other creators' spending too (the studio's, or a backend's)."""
        return self.budget.user_id is None

    @property
    def band(self) -> str:
        """How full the cap is, in words only: what a creator is shown of a shared cap.

        Neither the cap nor the room left is shown there: either one next to the other gives the
        studio's spend away (cap - room left). Three coarse bands tell a creator what they need,
        whether their next videos will go through, and say little about what others spent."""
        if self.percent >= 100:
            return "reached: new videos are refused" if self.budget.hard else "reached"
        return "nearly reached" if self.percent >= NEAR_PERCENT else "room left"


def _scoped(entries, budget: Budget):
    if budget.user_id:
        entries = entries.filter(owner_id=budget.user_id)
    if budget.backend_id:
        entries = entries.filter(backend_id=budget.backend_id)
    return entries


def committed(budget: Budget, year: int | None = None, month: int | None = None) -> Decimal:
    today = timezone.localdate()
    first = date(year or today.year, month or today.month, 1)
    # Spent and possibly billed: the month's roll-up rows (the ledger summed, written in the same
    # transactions as its entries), a few hundred rows however long the ledger.
    sums = _scoped(SpendingMonth.objects.filter(month=first), budget).aggregate(
        spent=Sum(F("charged") - F("refunded"), default=0), possible=Sum(F("possible") - F("settled"), default=0)
    )
    return money(sums["spent"] + sums["possible"] + _pending(budget, first))


def _pending(budget: Budget, first: date) -> Decimal:
    """Running jobs count with their estimate until charged. Read from the running jobs (a few, found by
    their status index) and scoped here: a creator or month filter in SQL lets SQLite walk the month's
    ledger instead."""
    charged = CostEntry.objects.filter(generation=OuterRef("generation"), kind=CostKind.CHARGE)
    running = CostEntry.objects.filter(kind=CostKind.ESTIMATE, generation__status__in=ACTIVE).exclude(Exists(charged))
    after = (first + timedelta(days=31)).replace(day=1)
    return sum(
        (
            amount
            for owner, backend, day, amount in running.values_list("owner_id", "backend_id", "day", "amount")
            if first <= day < after and budget.user_id in (None, owner) and budget.backend_id in (None, backend)
        ),
        Decimal(0),
    )


def committed_in(entries) -> Decimal:
    """The money ledger `entries` commit: charges minus refunds, plus what is possibly billed, plus the
    estimate of each job still running and not charged yet. For a cap over a few jobs read from the ledger
    itself (an API token's monthly cap, in the gateway); the budgets read the roll-ups (`committed`)."""
    charged = CostEntry.objects.filter(generation=OuterRef("generation"), kind=CostKind.CHARGE)
    totals = entries.aggregate(
        spent=net(),
        possible=possibly_billed(),
        pending=Sum(
            "amount", filter=Q(kind=CostKind.ESTIMATE, generation__status__in=ACTIVE) & ~Exists(charged), default=0
        ),
    )
    return money(totals["spent"] + totals["possible"] + totals["pending"])


def usage(owner=None, backend=None) -> list[BudgetUse]:
    budgets = Budget.objects.select_related("user", "backend")
    if owner is not None:
        budgets = budgets.filter(Q(user__isnull=True) | Q(user=owner))
    if backend is not None:
        budgets = budgets.filter(Q(backend__isnull=True) | Q(backend=backend))
    return [BudgetUse(b, committed(b)) for b in budgets]


def check(owner, backend, amount: Decimal) -> list[str]:
    """Call inside the transaction that records the estimate. Raises BudgetExceeded on a hard cap;
    returns warnings for soft caps that this job takes past their limit."""
    warnings = []
    for budget in Budget.objects.applicable(owner, backend).select_for_update().order_by("pk"):
        after = committed(budget) + amount
        if after <= budget.amount:
            continue
        over = money(after - budget.amount)
        cap = f"the monthly {'hard' if budget.hard else 'soft'} cap {budget.scope}"
        if budget.user_id is None and not owner.is_staff:
            # The cap counts others' spending: its amount and the overshoot would give that away.
            message = f"This ${amount:.2f} video would take {cap} over."
        else:
            message = f"This ${amount:.2f} video would take {cap} (${budget.amount:.2f}) over by ${over:.2f}."
        if budget.hard:
            raise BudgetExceeded(message + " Nothing was sent.")
        warnings.append(message)
    return warnings
