"""A big history in a few seconds: finished generations (and their ledger) by batched raw inserts, COPY on
PostgreSQL. Every column is filled from the model, so a new field cannot break the benchmarks: the bench's
own values where it has them, each field's default otherwise."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone

from generations.billing.models import CostEntry, CostKind
from generations.jobs.models import Generation
from generations.states import Status

BATCH = 20_000
# A history as it looks after a while: mostly completed, some failed, a few timed out or cancelled.
# Plain strings: a database driver may write an Enum by its name.
ENDINGS = (
    [Status.COMPLETED.value] * 88
    + [Status.FAILED.value] * 8
    + [Status.TIMED_OUT.value] * 2
    + [Status.CANCELLED.value] * 2
)


class Table:
    """Rows of `model` given as tuples of `given` fields (database-ready values); the rest get their defaults."""

    def __init__(self, model: type[models.Model], given: list[str]):
        meta = model._meta
        self.model = model
        fields = [f for f in meta.concrete_fields if f.attname not in given and not f.primary_key]
        self.fixed = tuple(f.get_db_prep_save(f.get_default(), connection) for f in fields)
        self.columns = [meta.get_field(name).column for name in given] + [f.column for f in fields]

    def insert(self, rows: list[tuple]) -> None:
        table, columns = self.model._meta.db_table, ", ".join(self.columns)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row + self.fixed)
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", [r + self.fixed for r in rows])

    def reset_sequence(self) -> None:
        """After rows inserted with their own ids: the next id the database hands out comes after them."""
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [self.model]):
                cursor.execute(sql)


GENERATION_FIELDS = [
    "id",
    "uuid",
    "idempotency_key",
    "owner_id",
    "backend_id",
    "prompt",
    "model",
    "seconds",
    "size",
    "status",
    "progress",
    "created_at",
    "updated_at",
    "completed_at",
    "video",
    "thumbnail",
]
LEDGER_FIELDS = ["owner_id", "backend_id", "generation_id", "kind", "amount", "created_at", "day", "model"]


def finished_generations(
    count: int,
    *,
    owners: list[int],
    backends: list[int],
    newest: datetime | None = None,
    spacing: timedelta = timedelta(seconds=30),
    ledger: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> None:
    """`count` finished 4-second videos, one every `spacing` back from `newest` (so the newest of them is
    the newest in the table), spread over `owners` and `backends`. With `ledger`, each has its estimate and,
    when completed, its charge (what a card shows)."""
    started = time.perf_counter()
    newest = newest or timezone.now() - timedelta(minutes=5)
    generations = Table(Generation, GENERATION_FIELDS)
    entries = Table(CostEntry, LEDGER_FIELDS) if ledger else None
    first_id = (Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    rng = random.Random(12)
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        rows, ledger_rows = [], []
        for row in _rows(first_id + done, size, done, owners, backends, newest, spacing, rng):
            rows.append(row)
            if entries is not None:
                ledger_rows += _ledger(row)
        generations.insert(rows)
        if entries is not None:
            entries.insert(ledger_rows)
        done += size
        if done % 200_000 == 0 or done == count:
            say(f"  {done:,} generations in {time.perf_counter() - started:.0f} s")
    generations.reset_sequence()


def _rows(first_id, size, offset, owners, backends, newest, spacing, rng) -> Iterator[tuple]:
    adapt = connection.ops.adapt_datetimefield_value
    for n in range(size):
        pk = first_id + n
        at = newest - spacing * (offset + n)
        when = adapt(at)
        status = rng.choice(ENDINGS)
        key = uuid.UUID(int=pk).hex
        done = status == Status.COMPLETED
        folder = f"generations/{owners[pk % len(owners)]}/{key}"
        yield (
            pk,
            key,
            f"bench-{key}",
            owners[pk % len(owners)],
            backends[pk % len(backends)],
            f"A paper boat on a pond, take {pk}",
            "sora-2",
            4,
            "720x1280",
            status,
            100 if done else 40,
            when,
            when,
            when if done else None,
            f"{folder}/video.mp4" if done else "",
            f"{folder}/thumbnail.webp" if done else "",
        )


def _ledger(row: tuple) -> list[tuple]:
    pk, owner, backend, status, when = row[0], row[3], row[4], row[9], row[11]
    day = when[:10] if isinstance(when, str) else when.date()
    entries = [(owner, backend, pk, CostKind.ESTIMATE.value, "0.400000", when, day, "sora-2")]
    if status == Status.COMPLETED:
        entries.append((owner, backend, pk, CostKind.CHARGE.value, "0.400000", when, day, "sora-2"))
    return entries
