"""The ledger (append-only cost entries), its roll-ups (what the spending report reads) and monthly budgets."""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q, Sum
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from generations.billing.money import money
from generations.billing.upsert import add_all, add_to
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

    def record(
        self, *, kind, amount, backend, owner=None, generation=None, binding=None, price=None, note="", characters=None
    ):
        """Append one entry; a second charge or refund for the same job is refused by the database. `owner`: the
        creator it is for (for a job's entry, the job's owner unless given). `characters`: the ids of the job's
        characters, where the caller knows them (a job it has just made), else they are read.

        The roll-ups the spending report reads are added to in the same transaction."""
        entry = _new_entry(kind, amount, backend, owner, generation, binding, price, note)
        with transaction.atomic(savepoint=False):
            entry.save(force_insert=True)
            known = None if characters is None or kind in OTHER_KIND else Found(sorted(characters) or [None], None)
            count(entry, generation, found=known)
        return entry

    def record_once(self, **fields):
        """Record an entry unless the ledger already has one of this kind for the same job or
        binding (the unique constraints decide, so two workers racing both end up right).
        Returns the new entry, or None if there was one already.

        One statement writes the entry or finds it there (INSERT … ON CONFLICT DO NOTHING), and brings back what
        its roll-ups need: no savepoint for the constraint to fail into, no reads of its own (two to four round
        trips fewer in a job's completing transaction on PostgreSQL)."""
        if not connection.features.can_return_columns_from_insert:  # SQLite before 3.35
            try:
                with transaction.atomic():
                    return self.record(**fields)
            except IntegrityError:
                return None
        entry = _new_entry(**fields)
        with transaction.atomic(savepoint=False):
            if (found := _insert_once(entry)) is None:
                return None
            count(entry, fields.get("generation"), found=found)
        return entry

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
            verdict = f"{'Confirmed' if confirm else 'Voided'} by {by}"
            settled = self.record_like(possible, generation, CostKind.SETTLED, verdict)
            if settled is None:
                return False
            if confirm:
                self.record_like(possible, generation, CostKind.CHARGE, f"Possibly billed, confirmed by {by}")
            # The one ledger write to a finished job without a state change: its card is kept by updated_at.
            type(generation).objects.filter(pk=generation.pk).update(updated_at=timezone.now())
        return True

    def move_estimate(self, generation, backend, amount, price, note: str) -> None:
        """Move a job's estimate to the backend it falls back to (its quote there), and the roll-ups with it.

        The one edit the ledger allows: an estimate is not money spent, and moving it (rather than adding
        a second one) keeps the job counted once against budgets."""
        with transaction.atomic(savepoint=False):
            # Every job's start locks the budgets it counts against, then adds to roll-up rows; a move
            # takes them in the same order, so the two can never wait for each other (PostgreSQL).
            budgets = Budget.objects.applicable(generation.owner_id, backend).select_for_update().order_by("pk")
            list(budgets.values_list("pk"))
            entry = self.select_for_update().filter(generation=generation, kind=CostKind.ESTIMATE).first()
            if entry is None:
                return
            before = copy.copy(entry)
            entry.backend, entry.amount, entry.price, entry.note = backend, money(amount), price, note[:200]
            entry.save(update_fields=["backend", "amount", "price", "note"])
            count_move(before, entry, generation)

    def refund_if_unbilled(self, generation) -> None:
        """Refund a failed job's up-front charge where the backend does not bill failures."""
        if generation.backend.bills_failed_jobs:
            return
        charge = self.filter(generation=generation, kind=CostKind.CHARGE).first()
        if charge is None:
            return
        note = f"Refund: {generation.get_status_display().lower()} ({generation.error_code})"
        self.record_like(charge, generation, CostKind.REFUND, note)

    def record_like(self, entry, generation, kind: str, note: str):
        """Record once an entry of `kind` for `generation` (`entry`'s job) at `entry`'s amount, backend, owner and
        price: a refund of a charge, the settling of a possibly billed amount. The new entry, or None if the job
        had one of that kind already."""
        return self.record_once(
            kind=kind,
            amount=entry.amount,
            backend=entry.backend,
            owner=entry.owner,
            generation=generation,
            price=entry.price,
            note=note[:200],
        )


class CostEntry(models.Model):
    """Append-only ledger. Corrections are new rows (refunds), never edits."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cost_entries")
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="cost_entries")
    # RESTRICT: a billed job is history, deleted only with its creator (the gallery's delete is soft).
    # Deleting one alone would silently rewrite the past: its charge no longer a video, its spend no
    # longer its characters'.
    generation = models.ForeignKey(
        "generations.Generation", null=True, blank=True, on_delete=models.RESTRICT, related_name="cost_entries"
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


# --- The roll-ups ---------------------------------------------------------------------------------
# The spending report reads these, never the ledger: a month's report sums a few hundred monthly rows
# and a few thousand daily ones, however many entries the month holds. Each ledger write adds to them
# in its own transaction (`count`), so they are always the ledger summed; `rollup.rebuild()`
# (manage.py rebuild_spending) recomputes them from it.
#
# Two grains, because the report needs two: its breakdowns (backend, model, series, creator,
# character, videos by kind) are per month, and one monthly row stands for ~30 daily ones (at the
# benchmark's million entries a month is ~16,000 rows at day x backend x model x series x creator,
# ~530 at month x the same); its days (the daily lines and the chart) need the day, and only the
# backend and creator beside it.

# Which column of a roll-up each kind of entry adds to.
COLUMN = {
    CostKind.ESTIMATE: "estimated",
    CostKind.CHARGE: "charged",
    CostKind.REFUND: "refunded",
    CostKind.POSSIBLE: "possible",
    CostKind.SETTLED: "settled",
}


class Totals(models.Model):
    """What a roll-up row sums: the amount of each kind of entry, the videos charged, the entries.

    A column per kind rather than a row per kind: a third as many rows, plain sums to read, and a kind
    the report shows is a column it names."""

    estimated = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    charged = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    refunded = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    possible = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    settled = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    # Charges of a job (one per video, a ledger constraint): character fees are not videos.
    videos = models.IntegerField(default=0, db_default=0)
    entries = models.IntegerField(default=0, db_default=0)

    class Meta:
        abstract = True


def totals(kind: str, amount: Decimal, of_video: bool, sign: int = 1) -> dict:
    """One entry as roll-up columns (sign -1 takes it back out); `of_video`: the entry has a job."""
    amounts = {column: Decimal(0) for column in COLUMN.values()}
    amounts[COLUMN[kind]] = sign * amount
    return {**amounts, "videos": sign * int(kind == CostKind.CHARGE and of_video), "entries": sign}


class SpendingDay(Totals):
    """The ledger summed per day, creator and backend: the report's daily lines and its chart."""

    day = models.DateField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "owner", "backend"], name="one_spending_day")]
        indexes = [models.Index(fields=["owner", "day"])]

    def __str__(self) -> str:
        return f"{self.day} owner {self.owner_id} backend {self.backend_id}: {self.entries} entries"


class SpendingMonth(Totals):
    """The ledger summed per month, creator, backend, model and series: every breakdown but characters."""

    month = models.DateField(help_text="Its first day")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=80, blank=True)
    # A deleted series' rows are added to the rows without one first (rollup.forget_series), as the
    # ledger's own entries lose their series: nothing is left to cascade, and a row left by mistake
    # fails the deletion at commit rather than vanishing with its money.
    series = models.ForeignKey(
        "generations.Series", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "owner", "backend", "model", "series"],
                condition=Q(series__isnull=False),
                name="one_spending_month_per_series",
            ),
            models.UniqueConstraint(
                fields=["month", "owner", "backend", "model"],
                condition=Q(series__isnull=True),
                name="one_spending_month_without_series",
            ),
        ]
        indexes = [models.Index(fields=["month"]), models.Index(fields=["owner", "month"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} owner {self.owner_id} backend {self.backend_id}: {self.entries} entries"


class CharacterSpendingMonth(Totals):
    """The ledger summed per month, creator and character of the job (none: a row with no character).

    A video with two characters counts for both, so characters cannot be a column of SpendingMonth."""

    month = models.DateField(help_text="Its first day")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Taken away before a character is deleted (rollup.forget_character), as for SpendingMonth.series.
    character = models.ForeignKey(
        "characters.Character", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "owner", "character"],
                condition=Q(character__isnull=False),
                name="one_character_spending_month",
            ),
            models.UniqueConstraint(
                fields=["month", "owner"],
                condition=Q(character__isnull=True),
                name="one_spending_month_without_character",
            ),
        ]
        indexes = [models.Index(fields=["month"]), models.Index(fields=["owner", "month"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} owner {self.owner_id} character {self.character_id}: {self.entries} entries"


class VideoSpendingMonth(models.Model):
    """Videos paid for, per month, creator and kind of video (model, seconds, size): what the month's
    work would have cost elsewhere is priced from these.

    `net` is charges minus refunds of videos in the month the money moved; `kept` counts the videos
    charged in the month and never refunded (a refund later takes its video out of its charge's month)."""

    month = models.DateField(help_text="Its first day")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=80, blank=True)
    seconds = models.PositiveIntegerField()
    size = models.CharField(max_length=20)
    net = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    kept = models.IntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "owner", "model", "seconds", "size"], name="one_video_spending_month"
            )
        ]
        indexes = [models.Index(fields=["owner", "month"])]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} owner {self.owner_id} {self.model} {self.seconds}s {self.size}: {self.kept} kept"


def characters_of(generation) -> list:
    """The ids of the job's characters, or [None]: the roll-up row for jobs (and fees) without one.

    In id order: every writer takes roll-up rows in one order (table, then key), so two never wait
    for each other's rows (PostgreSQL)."""
    if generation is None:
        return [None]
    with connection.cursor() as cursor:
        cursor.execute(_characters_statement(type(generation), connection.vendor), [generation.pk])
        return [character for (character,) in cursor.fetchall()] or [None]


# The two reads every charge makes (its job's characters, and whether the job's refund or charge is written):
# statements built once, as the roll-ups' own (billing.upsert). The ORM compiled them on every charge, which
# cost more CPU than reading them.


@functools.cache
def _characters_statement(model, vendor: str) -> str:
    quote = connection.ops.quote_name
    through = model.characters.through._meta
    generation, character = (quote(through.get_field(name).column) for name in ("generation", "character"))
    return f"SELECT {character} FROM {quote(through.db_table)} WHERE {generation} = %s ORDER BY {character}"


@functools.cache
def _day_of_statement(vendor: str) -> str:
    quote = connection.ops.quote_name
    meta = CostEntry._meta
    day, generation, kind = (quote(meta.get_field(name).column) for name in ("day", "generation", "kind"))
    return f"SELECT {day} FROM {quote(meta.db_table)} WHERE {generation} = %s AND {kind} = %s LIMIT 1"


def _day_of(generation_id: int, kind: str):
    """The day of the job's entry of `kind` (one per job), or None if the ledger has none."""
    with connection.cursor() as cursor:
        cursor.execute(_day_of_statement(connection.vendor), [generation_id, kind])
        row = cursor.fetchone()
    return None if row is None else CostEntry._meta.get_field("day").to_python(row[0])


# A charge's refund and a refund's charge: whether the video is kept (VideoSpendingMonth) depends on both.
OTHER_KIND = {CostKind.CHARGE: CostKind.REFUND, CostKind.REFUND: CostKind.CHARGE}


@dataclass(frozen=True)
class Found:
    """What an entry's insert read beside it: its job's characters (as characters_of gives them), and the day of
    the job's entry of the other kind (OTHER_KIND; None if the ledger has none, or the entry is of neither kind)."""

    characters: list
    other_day: object


def _new_entry(kind, amount, backend, owner=None, generation=None, binding=None, price=None, note="") -> CostEntry:
    now = timezone.now()
    return CostEntry(
        kind=kind,
        amount=money(amount),
        backend=backend,
        owner_id=owner.pk if owner is not None else generation.owner_id,
        generation=generation,
        binding=binding,
        price=price,
        note=note,
        created_at=now,
        day=timezone.localdate(now),
        model=generation.model if generation else "",
        series_id=generation.scene.series_id if generation and generation.scene_id else None,
    )


def _insert_once(entry: CostEntry) -> Found | None:
    """Insert `entry` unless a unique constraint finds its like there already (then None), in one statement that
    also reads what count() needs."""
    sql, fields = _insert_once_statement(connection.vendor)
    values = [field.get_db_prep_save(field.pre_save(entry, True), connection) for field in fields]
    other = OTHER_KIND.get(entry.kind, "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, entry.generation_id, entry.generation_id, other])
        row = cursor.fetchone()
    if row is None:
        return None
    entry.pk, characters, other_day = row
    entry._state.adding, entry._state.db = False, connection.alias
    characters = sorted(json.loads(characters or "[]"))  # in id order, as characters_of: one lock order for all
    return Found(characters or [None], None if other_day is None else entry._meta.get_field("day").to_python(other_day))


@functools.cache
def _insert_once_statement(vendor: str) -> tuple[str, list]:
    quote = connection.ops.quote_name
    meta = CostEntry._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    through = meta.get_field("generation").related_model.characters.through._meta
    job, character = (quote(through.get_field(name).column) for name in ("generation", "character"))
    as_json = "json_agg({})::text" if vendor == "postgresql" else "json_group_array({})"
    characters = f"SELECT {as_json.format(character)} FROM {quote(through.db_table)} WHERE {job} = %s"
    other_day = _day_of_statement(vendor)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}, ({characters}), ({other_day})"
    )
    return sql, fields


def month_of(day):
    return day.replace(day=1)


def day_key(entry: CostEntry) -> dict:
    return {"day": entry.day, "owner_id": entry.owner_id, "backend_id": entry.backend_id}


def month_key(entry: CostEntry) -> dict:
    return {
        "month": month_of(entry.day),
        "owner_id": entry.owner_id,
        "backend_id": entry.backend_id,
        "model": entry.model,
        "series_id": entry.series_id,
    }


def count(entry: CostEntry, generation=None, found: Found | None = None) -> None:
    """Add one new ledger entry to the roll-ups, in the entry's transaction. `generation` is the
    entry's job, if any (the caller has it loaded); `found`: what the entry's insert read beside it."""
    amounts = totals(entry.kind, entry.amount, entry.generation_id is not None)
    additions = [(SpendingDay, day_key(entry), amounts), (SpendingMonth, month_key(entry), amounts)]
    for character in found.characters if found else characters_of(generation):
        key = {"month": month_of(entry.day), "owner_id": entry.owner_id, "character_id": character}
        additions.append((CharacterSpendingMonth, key, amounts))
    if generation is not None and entry.kind in (CostKind.CHARGE, CostKind.REFUND):
        other = found.other_day if found else _day_of(entry.generation_id, OTHER_KIND[entry.kind])
        additions += _video_additions(entry, generation, other)
    add_all(additions)


def count_move(before: CostEntry, after: CostEntry, generation) -> None:
    """An estimate moved from `before`'s backend and amount to `after`'s: out of one row, into another."""
    for model, key in ((SpendingDay, day_key), (SpendingMonth, month_key)):
        moves = sorted([(before, -1), (after, 1)], key=lambda move: move[0].backend_id)  # one order for all
        for entry, sign in moves:
            add_to(model, key(entry), totals(entry.kind, entry.amount, False, sign))
        drop_if_empty(model, key(before))
    for character in characters_of(generation):  # the character rows have no backend: only the amount moves
        key = {"month": month_of(after.day), "owner_id": after.owner_id, "character_id": character}
        add_to(CharacterSpendingMonth, key, {"estimated": after.amount - before.amount})


def drop_if_empty(model, key: dict) -> None:
    """Delete a roll-up row that no entry counts for any more (a moved estimate's old backend): the
    report would show it as a line of zeros, where the ledger has nothing."""
    model.objects.filter(entries=0, **key).delete()


def _video_additions(entry: CostEntry, generation, other_day) -> list[tuple]:
    """What a charge or refund adds to the videos roll-up (VideoSpendingMonth), as add_all takes it. `other_day`:
    the day of the job's refund (for a charge) or charge (for a refund), None if the ledger has none."""
    video = {
        "owner_id": entry.owner_id,
        "model": generation.model,
        "seconds": generation.seconds,
        "size": generation.size,
    }
    charge = entry.kind == CostKind.CHARGE
    adds = {month_of(entry.day): {"net": entry.amount if charge else -entry.amount, "kept": 0}}
    # Kept: a charged video without a refund, counted in its charge's month whichever is written last.
    if charge:
        if other_day is None:
            adds[month_of(entry.day)]["kept"] = 1
    elif other_day is not None:
        adds.setdefault(month_of(other_day), {"net": Decimal(0), "kept": 0})["kept"] = -1
    return [(VideoSpendingMonth, {**video, "month": month}, amounts) for month, amounts in sorted(adds.items())]


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
