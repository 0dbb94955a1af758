"""The spending roll-ups (billing.models) as the ledger summed: rebuilt from it, compared with it, and
kept right when something an entry points at is deleted or re-attached.

Each ledger write adds to the roll-ups itself (billing.models.count). What this module covers is what
happens to the ledger without a write: a deleted series leaves its entries without one (SET_NULL), a
deleted character or a job's characters edited in the admin change which character an entry counts
for. Each is mirrored here, in the same transaction, by moving the roll-up amounts with it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Sum, Value
from django.db.models.signals import m2m_changed, pre_delete

from generations.billing.models import (
    COLUMN,
    CharacterSpendingMonth,
    CostEntry,
    CostKind,
    SpendingDay,
    SpendingMonth,
    VideoSpendingMonth,
    drop_if_empty,
    month_of,
    net,
)
from generations.billing.money import money
from generations.billing.upsert import add_to

TOTALS = [*COLUMN.values(), "videos", "entries"]

# Each roll-up, the columns that name a row, and the columns it sums.
KEYS = {
    SpendingDay: ["day", "owner_id", "backend_id"],
    SpendingMonth: ["month", "owner_id", "backend_id", "model", "series_id"],
    CharacterSpendingMonth: ["month", "owner_id", "character_id"],
    VideoSpendingMonth: ["month", "owner_id", "model", "seconds", "size"],
}
VALUES = {
    SpendingDay: TOTALS,
    SpendingMonth: TOTALS,
    CharacterSpendingMonth: TOTALS,
    VideoSpendingMonth: ["net", "kept"],
}


def _sums() -> dict:
    """The ledger summed as roll-up columns, as aggregates over CostEntry."""
    sums = {column: Sum("amount", filter=Q(kind=kind), default=0) for kind, column in COLUMN.items()}
    videos = Count("pk", filter=Q(kind=CostKind.CHARGE, generation__isnull=False))
    return {**sums, "videos": videos, "entries": Count("pk")}


def expected(ledger=None) -> dict:
    """Every roll-up row the ledger (or these entries of it) implies: {model: {key tuple: {column: value}}}.

    The database groups by day (a stored, indexed column); days fold into months here, over the
    grouped rows (a month function in SQL runs per ledger row on SQLite)."""
    ledger = (CostEntry.objects.all() if ledger is None else ledger).order_by()
    result: dict = {model: {} for model in KEYS}
    by_day = ledger.values("day", "owner_id", "backend_id", "model", "series_id").annotate(**_sums())
    for row in by_day.iterator(chunk_size=5000):
        _fold(result[SpendingDay], (row["day"], row["owner_id"], row["backend_id"]), row, TOTALS)
        key = (month_of(row["day"]), row["owner_id"], row["backend_id"], row["model"], row["series_id"])
        _fold(result[SpendingMonth], key, row, TOTALS)
    # A job with two characters counts for both; one without (or an entry without a job) for none.
    characters = ledger.values("day", "owner_id", character_id=F("generation__characters")).annotate(**_sums())
    for row in characters.iterator(chunk_size=5000):
        key = (month_of(row["day"]), row["owner_id"], row["character_id"])
        _fold(result[CharacterSpendingMonth], key, row, TOTALS)
    video = {"video_model": F("generation__model"), "seconds": F("generation__seconds"), "size": F("generation__size")}
    paid = ledger.filter(generation__isnull=False)
    refunded = CostEntry.objects.filter(generation=OuterRef("generation"), kind=CostKind.REFUND)
    nets = paid.filter(kind__in=[CostKind.CHARGE, CostKind.REFUND]).values("day", "owner_id", **video)
    kept = paid.filter(kind=CostKind.CHARGE).exclude(Exists(refunded)).values("day", "owner_id", **video)
    for rows in (nets.annotate(net=net(), kept=Value(0)), kept.annotate(net=Value(0), kept=Count("pk"))):
        for row in rows.iterator(chunk_size=5000):
            key = (month_of(row["day"]), row["owner_id"], row["video_model"], row["seconds"], row["size"])
            _fold(result[VideoSpendingMonth], key, row, ["net", "kept"])
    return result


def _fold(rows: dict, key: tuple, row: dict, columns: list[str]) -> None:
    """Add a grouped ledger row's sums to the roll-up row `key` (days fold into their month)."""
    values = rows.setdefault(key, dict.fromkeys(columns, 0))
    for name in columns:
        values[name] += money(row[name]) if isinstance(row[name], Decimal | float) else row[name]


def _key(model, row: dict) -> tuple:
    return tuple(row[name] for name in KEYS[model])


def _values(model, row: dict) -> dict:
    return {name: money(row[name]) if isinstance(row[name], Decimal | float) else row[name] for name in VALUES[model]}


def rebuild() -> dict:
    """Recompute every roll-up from the ledger; returns the rows written per roll-up.

    One creator's month at a time, each in its own transaction: its roll-up rows are deleted and summed
    again from its entries. Writers wait for that transaction only (SQLite's write lock; on PostgreSQL
    the ledger is locked against writes and the roll-ups against everything but reads), so no entry is
    counted twice or missed, and none waits long (a studio's rebuild in one transaction could hold
    SQLite's lock past its busy timeout). A month rebuilt early counts what is written meanwhile as any
    other month does; one not reached yet will sum it from the ledger."""
    days = CostEntry.objects.order_by().values_list("owner_id", "day").distinct()
    slices = {(owner, month_of(day)) for owner, day in days.iterator(chunk_size=5000)}
    for model in KEYS:  # and the months that lost every entry (a creator deleted meanwhile): emptied
        if model is SpendingDay:
            stored = model.objects.order_by().values_list("owner_id", "day").distinct()
            slices |= {(owner, month_of(day)) for owner, day in stored}
        else:
            slices |= set(model.objects.order_by().values_list("owner_id", "month").distinct())
    written: dict = dict.fromkeys((model._meta.object_name for model in KEYS), 0)
    for owner, month in sorted(slices):
        with transaction.atomic():
            _lock_for_rebuild()
            for name, count in _rebuild_month(owner, month).items():
                written[name] += count
    return written


def _rebuild_month(owner: int, month) -> dict:
    after = month_of(month + timedelta(days=31))
    wanted = expected(CostEntry.objects.filter(owner_id=owner, day__gte=month, day__lt=after))
    written = {}
    for model, rows in wanted.items():
        stored = model.objects.filter(owner_id=owner)
        if model is SpendingDay:
            stored.filter(day__gte=month, day__lt=after).delete()
        else:
            stored.filter(month=month).delete()
        objects = (model(**dict(zip(KEYS[model], key, strict=True)), **values) for key, values in rows.items())
        model.objects.bulk_create(objects, batch_size=2000)
        written[model._meta.object_name] = len(rows)
    return written


def _lock_for_rebuild() -> None:
    if connection.vendor != "postgresql":
        return  # SQLite: the transaction began IMMEDIATE and holds the only write lock
    quote = connection.ops.quote_name
    through = apps.get_model("generations", "Generation").characters.through
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {quote(CostEntry._meta.db_table)}, {quote(through._meta.db_table)} IN SHARE MODE")
        tables = ", ".join(quote(model._meta.db_table) for model in KEYS)
        cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")


def differences(limit: int = 20) -> list[str]:
    """Where the roll-ups and the ledger summed disagree, in words (empty: they agree).

    A row of zeros is the same as no row (what a refunded video leaves in the videos roll-up)."""
    found = []
    for model, wanted in expected().items():
        have = {}
        for row in model.objects.values(*KEYS[model], *VALUES[model]):
            have[_key(model, row)] = _values(model, row)
        for key in sorted(set(wanted) | set(have), key=str):
            want, got = wanted.get(key), have.get(key)
            if _zero(want) and _zero(got) or want == got:
                continue
            found.append(f"{model._meta.object_name} {key}: ledger {want}, roll-up {got}")
            if len(found) >= limit:
                return found
    return found


def _zero(values: dict | None) -> bool:
    return values is None or not any(values.values())


# --- When what an entry points at changes without a ledger write --------------------------------


def forget_series(sender, instance, **kwargs) -> None:
    """A series is being deleted: its entries will have no series (SET_NULL), so its roll-up rows are
    added to the rows without one. Rows are locked first: a worker adding to one finishes before."""
    rows = SpendingMonth.objects.select_for_update().filter(series_id=instance.pk).order_by("pk")
    rows = list(rows.values("pk", "month", "owner_id", "backend_id", "model", *TOTALS))
    if not rows:
        return
    SpendingMonth.objects.filter(pk__in=[row["pk"] for row in rows]).delete()
    for row in sorted(rows, key=lambda row: (row["month"], row["owner_id"], row["backend_id"], row["model"])):
        key = {name: row[name] for name in ("month", "owner_id", "backend_id", "model")}
        add_to(SpendingMonth, {**key, "series_id": None}, {name: row[name] for name in TOTALS})


def forget_character(sender, instance, **kwargs) -> None:
    """A character is being deleted: its jobs lose it (their link rows go with it). Its roll-up rows
    go, and the entries of jobs it was the only character of are added to the rows without one."""
    rows = CharacterSpendingMonth.objects.select_for_update().filter(character_id=instance.pk)
    CharacterSpendingMonth.objects.filter(pk__in=list(rows.values_list("pk", flat=True))).delete()
    through = instance.generations.through.objects
    others = through.filter(generation_id=OuterRef("generation_id")).exclude(character_id=instance.pk)
    alone = (
        CostEntry.objects.order_by()
        .filter(generation_id__in=through.filter(character_id=instance.pk).values("generation_id"))
        .exclude(Exists(others))
        .values("day", "owner_id", character_id=Value(None, output_field=IntegerField()))
    )
    _add_character_rows(alone, 1)


def characters_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A job's characters change after its entries were written (the admin can edit them): its entries
    leave the character rows they counted for before the change, and join the new ones after it."""
    if action not in ("pre_add", "post_add", "pre_remove", "post_remove", "pre_clear", "post_clear"):
        return
    if action.endswith(("_add", "_remove")) and not pk_set:
        return
    if not reverse:
        generations = [instance.pk]
    elif action == "pre_clear":  # the character loses every job: remember them for post_clear
        generations = instance._rollup_clearing = list(
            sender.objects.filter(character_id=instance.pk).values_list("generation_id", flat=True)
        )
    elif action == "post_clear":
        generations = getattr(instance, "_rollup_clearing", [])
    else:
        generations = sorted(pk_set)
    entries = CostEntry.objects.order_by().filter(generation_id__in=generations)
    if not entries.exists():
        return  # a new job's characters are set before its estimate is written
    if action.startswith("pre_"):
        # Hold the jobs: a worker writing one of their entries now waits, and counts it after the change.
        job = sender._meta.get_field("generation").related_model
        list(job.objects.select_for_update().filter(pk__in=generations).values_list("pk"))
    rows = entries.values("day", "owner_id", character_id=F("generation__characters"))
    _add_character_rows(rows, -1 if action.startswith("pre_") else 1)


def _add_character_rows(entries, sign: int) -> None:
    """Add (sign -1: take out) ledger entries grouped by day, owner and character_id to the character
    roll-up, by month, in key order (the order every writer takes rows in)."""
    months: dict = {}
    for row in entries.annotate(**_sums()):
        _fold(months, (month_of(row["day"]), row["owner_id"], row["character_id"]), row, TOTALS)
    order = sorted(months.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] is not None, item[0][2] or 0))
    for (month, owner, character), values in order:
        key = {"month": month, "owner_id": owner, "character_id": character}
        add_to(CharacterSpendingMonth, key, {name: sign * value for name, value in values.items()})
        if sign < 0:
            drop_if_empty(CharacterSpendingMonth, key)


def connect() -> None:
    """Listen for the changes above (GenerationsConfig.ready)."""
    pre_delete.connect(forget_series, sender="generations.Series", dispatch_uid="rollup.forget_series")
    pre_delete.connect(forget_character, sender="characters.Character", dispatch_uid="rollup.forget_character")
    through = apps.get_model("generations", "Generation").characters.through
    m2m_changed.connect(characters_changed, sender=through, dispatch_uid="rollup.characters_changed")
