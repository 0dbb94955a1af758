"""The ledger (append-only cost entries) and monthly budgets."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q, Sum
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from generations.billing.money import money
from generations.providers.models import Backend, Price


class CostKind(models.TextChoices):
    ESTIMATE = "estimate", "Estimate"
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"
    # A job whose create was lost where the provider cannot be asked about it may have been billed there:
    # "possible" holds its estimate (counted against budgets, shown apart on the spending page) until an
    # admin settles it, confirming it (a charge is added) or voiding it (no charge). Neither is money spent.
    POSSIBLE = "possible", "Possibly billed"
    SETTLED = "settled", "Possibly billed, settled"


def possibly_billed() -> CombinedExpression:
    """Money a provider may have billed that nobody has confirmed or voided yet, as one aggregate."""
    return Sum("amount", filter=Q(kind=CostKind.POSSIBLE), default=0) - Sum(
        "amount", filter=Q(kind=CostKind.SETTLED), default=0
    )


def net() -> CombinedExpression:
    """Money spent: charges minus refunds (estimates are not money spent), as one aggregate."""
    return Sum("amount", filter=Q(kind=CostKind.CHARGE), default=0) - Sum(
        "amount", filter=Q(kind=CostKind.REFUND), default=0
    )


def net_of(entries) -> Decimal:
    """Charges minus refunds of entries already loaded (a prefetched list): the same rule as `net()`."""
    signs = {CostKind.CHARGE: 1, CostKind.REFUND: -1}
    return money(sum((signs.get(e.kind, 0) * e.amount for e in entries), Decimal(0)))


class CostEntryQuerySet(models.QuerySet):
    def net(self) -> Decimal:
        """Charges minus refunds of these entries."""
        return money(self.aggregate(net=net())["net"])

    def for_user(self, user):
        return self if user.is_staff else self.filter(owner=user)

    def in_month(self, year: int, month: int):
        start = timezone.datetime(year, month, 1).date()
        end = timezone.datetime(year + (month == 12), month % 12 + 1, 1).date()
        return self.filter(day__gte=start, day__lt=end)

    def record(self, *, kind, amount, backend, owner, generation=None, binding=None, price=None, note=""):
        """Append one entry; a second charge or refund for the same job is refused by the database."""
        now = timezone.now()
        return self.create(
            kind=kind,
            amount=money(amount),
            backend=backend,
            owner=owner,
            generation=generation,
            binding=binding,
            price=price,
            note=note,
            created_at=now,
            day=timezone.localdate(now),
            model=generation.model if generation else "",
            series_id=generation.scene.series_id if generation and generation.scene_id else None,
        )

    def record_once(self, **fields):
        """Record an entry unless the ledger already has one of this kind for the same job or
        binding (the unique constraints decide, so two workers racing both end up right).
        Returns the new entry, or None if there was one already."""
        try:
            with transaction.atomic():
                return self.record(**fields)
        except IntegrityError:
            return None

    def possibly_billed(self) -> Decimal:
        """What these entries hold as possibly billed and not yet settled."""
        return money(self.aggregate(possible=possibly_billed())["possible"])

    def settle(self, generation, *, confirm: bool, by: str) -> bool:
        """An admin's word on a possibly billed job: confirmed (charged at the amount held) or voided.
        Once per job (the ledger's constraints); False if there was nothing left to settle."""
        possible = self.filter(generation=generation, kind=CostKind.POSSIBLE).first()
        if possible is None:
            return False
        with transaction.atomic():
            settled = self.record_once(
                kind=CostKind.SETTLED,
                amount=possible.amount,
                backend=possible.backend,
                owner=possible.owner,
                generation=generation,
                price=possible.price,
                note=f"{'Confirmed' if confirm else 'Voided'} by {by}"[:200],
            )
            if settled is None:
                return False
            if confirm:
                self.record(
                    kind=CostKind.CHARGE,
                    amount=possible.amount,
                    backend=possible.backend,
                    owner=possible.owner,
                    generation=generation,
                    price=possible.price,
                    note=f"Possibly billed, confirmed by {by}"[:200],
                )
        return True

    def refund_if_unbilled(self, generation) -> None:
        """Refund a failed job's up-front charge where the backend does not bill failures."""
        if generation.backend.bills_failed_jobs:
            return
        charge = self.filter(generation=generation, kind=CostKind.CHARGE).first()
        if charge is None:
            return
        self.record_once(
            kind=CostKind.REFUND,
            amount=charge.amount,
            backend=charge.backend,
            owner=charge.owner,
            generation=generation,
            price=charge.price,
            note=f"Refund: {generation.get_status_display().lower()} ({generation.error_code})",
        )


class CostEntry(models.Model):
    """Append-only ledger. Corrections are new rows (refunds), never edits."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cost_entries")
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="cost_entries")
    generation = models.ForeignKey(
        "generations.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_entries"
    )
    binding = models.ForeignKey(
        "characters.CharacterBinding", null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_entries"
    )
    kind = models.CharField(max_length=10, choices=CostKind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=6, help_text="USD")
    price = models.ForeignKey(Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The billing day, stored: grouping by a stored, indexed day is ~60x faster than TruncDay on SQLite.
    day = models.DateField(db_index=True)
    # What the report groups by, stored as well, so a month's report never joins the generations.
    model = models.CharField(max_length=80, blank=True)
    series = models.ForeignKey("generations.Series", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = CostEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "cost entries"
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=Q(generation__isnull=False),
                name="one_entry_of_each_kind_per_generation",
            ),
            models.UniqueConstraint(
                fields=["binding", "kind"],
                condition=Q(binding__isnull=False),
                name="one_entry_of_each_kind_per_binding",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="cost_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["owner", "day"]), models.Index(fields=["backend", "day"])]

    def __str__(self) -> str:
        return f"{self.kind} ${self.amount} {self.backend}"


class BudgetQuerySet(models.QuerySet):
    def applicable(self, owner, backend):
        """Caps a job by `owner` on `backend` counts against: overall, the backend's, the creator's."""
        return self.filter(Q(user__isnull=True) | Q(user=owner), Q(backend__isnull=True) | Q(backend=backend))


class Budget(models.Model):
    """A monthly cap. No user and no backend = the whole studio; either or both narrow it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
        help_text="Blank = every creator.",
    )
    backend = models.ForeignKey(
        Backend,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
        help_text="Blank = every backend.",
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="USD per calendar month")
    hard = models.BooleanField(
        default=True, help_text="Hard caps refuse a job before anything is sent; soft caps warn."
    )

    objects = BudgetQuerySet.as_manager()

    class Meta:
        ordering = ["user", "backend", "-hard"]

    def __str__(self) -> str:
        return f"{'Hard' if self.hard else 'Soft'} cap {self.scope}: ${self.amount}/month"

    def clean(self):
        super().clean()
        if self.amount is not None and self.amount < 0:
            raise ValidationError({"amount": "A budget cannot be negative."})

    @property
    def scope(self) -> str:
        if self.user_id and self.backend_id:
            return f"for {self.user} on {self.backend}"
        if self.user_id:
            return f"for {self.user}"
        if self.backend_id:
            return f"on {self.backend}"
        return "for the whole studio"
