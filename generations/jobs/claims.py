"""The pipeline's claims on jobs, a step's read of the job it claimed, and the slot count its submit makes
under the backend's lock: the statements the pump and its threads run several times for every job.

Each is one statement, built once per database from the model and kept (as billing.upsert builds its roll-up
statement): the ORM would compile the same query again on every call, and for a statement this small the
compiling costs more CPU than the database's work (about a millisecond a call on SQLite, measured in
`make bench`). What they do is still the ORM's rule of this app: a compare-and-set on the job's row.

A job is leased (`lease_until`) only while nobody holds it, and only if it is still as the claimer saw it:
its status and its due time (`next_poll_at`). A webhook that made it due, a sweep that timed it out, another
pump that took it: each changed one of those, so the claim finds no row and the job stays where it is.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from generations.billing.models import CostEntry, CostKind
from generations.jobs.models import Generation, GenerationImage, add_event, event_table
from generations.jobs.models import as_db_datetime as _at
from generations.providers.models import Backend, Price
from generations.states import ACTIVE, IN_FLIGHT, Status

# How long a handed-out job is left alone before the pump hands it out again (its task may have
# been dropped by a dying worker on the Redis broker, which does not re-deliver).
HANDOUT_GRACE = timedelta(seconds=15)


def take(pk: int, status: str, due: datetime, now: datetime) -> datetime | None:
    """Lease the job for a step run here: compare-and-set on its status, its due time and a free lease.
    The lease's end, or None if the job changed or someone else holds it."""
    lease = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(_sql("take"), [_at(now + HANDOUT_GRACE), _at(lease), pk, status, _at(due), _at(now)])
        return lease if cursor.rowcount == 1 else None


def take_next_queued(backend_id: int, now: datetime) -> tuple[Generation | None, datetime | None]:
    """Lease the backend's longest-waiting queued job nobody holds (a slot just came free), due yet or not, as
    `wake_next_in_line` would make it due: (the job as `read` reads it, the lease's end), or (None, None) if it
    has none, or another thread took it first.

    On PostgreSQL the claim and the read are one statement (the read takes the row the claim's RETURNING gives, as
    the claim left it); elsewhere the read follows."""
    lease = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    at = _at(now)
    claim = [_at(now + HANDOUT_GRACE), _at(lease), backend_id, Status.QUEUED, at, Status.QUEUED, at]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_sql("take_next_queued_and_read"), [*claim, CostKind.ESTIMATE])
            row = cursor.fetchone()
        return (_job(row), lease) if row else (None, None)
    with connection.cursor() as cursor:
        cursor.execute(_sql("take_next_queued"), claim)
        row = cursor.fetchone()
    generation = read(row[0]) if row else None
    return (generation, lease) if generation is not None else (None, None)


def hand_slot_on(backend, now: datetime, made_after: datetime) -> tuple[Generation | None, datetime | None]:
    """Inside the transaction that ends one of `backend`'s jobs on a pump's thread: move the backend's longest-waiting
    queued job nobody holds straight to submitting, in the slot the ended job gives back, leased for this thread: (the
    job as `read` reads it, marked `slot_handed_on`, the lease's end), or (None, None).

    No lock and no count of the backend's slots decide it, as they do a submit's: the ended job leaves the slot in the
    same transaction, so the backend's jobs in flight stay as many (a submit under the backend's lock meanwhile counts
    the ended job until this commits). The backend's own row is read again, so a backend disabled, paused, with its
    circuit open or its slots cut since its jobs were read hands nothing on; nor does a job that is not ready to be
    sent (its characters still to bind: no prompt to send yet) or was made before `made_after` (it times out instead).
    The pump's thread then takes that job the usual way, which deals with each case. The job's timeline says it went
    to submitting, as a submit's state change does."""
    lease = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    at = _at(now)
    taken = [
        Status.SUBMITTING, at, at, _at(now + HANDOUT_GRACE), _at(lease),  # what the job becomes
        backend.pk, Status.QUEUED, at,  # the backend's oldest queued job nobody holds
        Status.QUEUED, at, _at(made_after),  # still so when its row is written, and not too old
        backend.pk, at, backend.pk, Status.SUBMITTING, *IN_FLIGHT,  # its backend takes a job now
    ]  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_sql("hand_slot_on_and_read"), [*taken, Status.SUBMITTING, at, CostKind.ESTIMATE])
            row = cursor.fetchone()
        generation = _job(row) if row else None
    else:
        with connection.cursor() as cursor:
            cursor.execute(_sql("hand_slot_on"), taken)
            row = cursor.fetchone()
        if row:
            add_event(row[0], Status.SUBMITTING, now, "")
        generation = read(row[0]) if row else None
    if generation is None:
        return None, None
    generation.slot_handed_on = True
    return generation, lease


def wake_next_in_line(backend_id: int, now: datetime) -> None:
    """A slot came free: the backend's longest-waiting queued job nobody holds falls due now, which wakes
    the pump (it looks for jobs that fell due since its last tick) instead of its next tick. Not needed on a
    pump's own thread, which takes that job itself once its step ends (`pump_thread`)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("wake_next_in_line"), [_at(now), backend_id, Status.QUEUED, Status.QUEUED])


_thread = threading.local()

# A job whose provider asks for the next poll within this many seconds stays on the pump's thread until then, as a
# bare client would sleep and poll again, instead of going back to the table and the pump.
HOLD_SECONDS = 0.5


@contextmanager
def pump_thread():
    """Steps run inside this (a pump's own thread) take a freed slot's next queued job themselves
    (take_next_queued), so a job that ends there need not wake the pump for it; and keep the job whose next poll
    is moments away (lease_kept)."""
    _thread.on_pump = True
    try:
        yield
    finally:
        _thread.on_pump = False


def on_pump_thread() -> bool:
    return getattr(_thread, "on_pump", False)


def lease_kept(due: datetime | None, now: datetime) -> datetime | None:
    """What a step's last write leaves as its job's lease: on a pump's own thread, a new lease when the job's next
    step is due within HOLD_SECONDS (the thread waits for it and runs it, with no claim in between); else None,
    and the pump hands the job out when it falls due. A worker that dies holding it leaves it to the pump once the
    lease runs out, as one that dies in the middle of a step does."""
    if on_pump_thread() and due is not None and due <= now + timedelta(seconds=HOLD_SECONDS):
        return now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    return None


def let_go(pk: int, lease: datetime) -> None:
    """Give back a lease kept for a next step that will not run here after all (the pump's shift ended)."""
    Generation.objects.filter(pk=pk, lease_until=lease).update(lease_until=None)


def fell_due(since: datetime, now: datetime) -> bool:
    """Whether an active job fell due in (since, now]: the pump's look-out, many times a second (the
    (status, next_poll_at) index answers it)."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("fell_due"), [*ACTIVE, _at(since), _at(now)])
        return cursor.fetchone() is not None


def read(pk: int) -> Generation | None:
    """The job a step runs on, with its backend; `has_images`: whether it has a start or end image to send; and
    `estimate_price`: (its backend's id, the (price id, unit, amount) its estimate there used, or None), which
    the charge bills with (lifecycle._estimate_price).

    One statement written once, its row turned into models by the fields' own converters, as the ORM does: the
    ORM's select_related with an EXISTS annotation cost over a millisecond of CPU a step to compile. The
    creator is loaded when something asks for it (a fallback's budget check), as any foreign key is."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("read"), [CostKind.ESTIMATE, pk])
        row = cursor.fetchone()
    return None if row is None else _job(row)


def _job(row) -> Generation:
    """The job, its backend and what its steps need from the ledger and its images, from a row of `read`."""
    jobs, backends = len(Generation._meta.concrete_fields), len(Backend._meta.concrete_fields)
    generation = _load(Generation, row[:jobs])
    generation.backend = _load(Backend, row[jobs : jobs + backends])
    has_images, price_id, unit, amount = row[jobs + backends :]
    generation.has_images = bool(has_images)
    price = None if price_id is None else (price_id, unit, _convert(Price, "amount", amount))
    generation.estimate_price = (generation.backend_id, price)
    return generation


def slots_taken() -> dict[int, int]:
    """Per backend with any: how many of its concurrency slots are taken (jobs being submitted or running there).
    Through the status index: the jobs in flight, never the backend's history."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("slots_taken"), [Status.SUBMITTING, *IN_FLIGHT])
        return dict(cursor.fetchall())


def due(now: datetime, saturated: list[int], limit: int) -> list[tuple]:
    """Active jobs due at `now` that nobody holds, the longest due first, at most `limit`: (pk, next_poll_at,
    status, backend_id) each. A queued job of a `saturated` backend (no free slot) is left where it is."""
    with connection.cursor() as cursor:
        cursor.execute(
            _due_statement(connection.vendor, len(saturated)),
            [*ACTIVE, _at(now), _at(now), *([Status.QUEUED, *saturated] if saturated else []), limit],
        )
        rows = cursor.fetchall()
    return [(pk, _convert(Generation, "next_poll_at", at), status, backend) for pk, at, status, backend in rows]


def lock_backend(backend_id: int) -> None:
    """Hold the backend's row until the transaction ends (PostgreSQL; SQLite's IMMEDIATE transaction holds the
    whole database already): submit counts the backend's slots and takes one under it."""
    if connection.features.has_select_for_update:
        with connection.cursor() as cursor:
            cursor.execute(_sql("lock_backend"), [backend_id])


def in_flight(backend_id: int) -> int:
    """How many of the backend's concurrency slots are taken: its jobs being submitted or running there."""
    with connection.cursor() as cursor:
        cursor.execute(_sql("in_flight"), [backend_id, Status.SUBMITTING, *IN_FLIGHT])
        return cursor.fetchone()[0]


def _load(model, values):
    """A model instance from its concrete fields' columns, converted as the ORM converts them."""
    converted = [
        _convert(model, field.attname, value) for field, value in zip(model._meta.concrete_fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in model._meta.concrete_fields], converted)


def _convert(model, attname: str, value):
    column, converters = _converters(model, connection.vendor)[attname]
    for convert in converters:
        value = convert(value, column, connection)
    return value


@functools.cache
def _converters(model, vendor: str) -> dict:
    """Per field (by attname): its column and what turns a database value into the field's (a date from SQLite's
    text, a JSON document, a sealed key), as the ORM's compiler finds them."""
    found = {}
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        found[field.attname] = (
            column,
            [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)],
        )
    return found


@functools.cache
def _statements(vendor: str) -> dict[str, str]:
    quote = connection.ops.quote_name
    meta = Generation._meta
    table = quote(meta.db_table)
    pk, status, due, lease, backend = (
        quote(meta.get_field(name).column) for name in ("id", "status", "next_poll_at", "lease_until", "backend")
    )
    free = f"({lease} IS NULL OR {lease} < %s)"
    images = GenerationImage._meta
    has_images = (
        f"EXISTS (SELECT 1 FROM {quote(images.db_table)} WHERE {quote(images.get_field('generation').column)} "
        f"= {table}.{pk}) AS {quote('has_images')}"
    )
    oldest_queued = f"SELECT {pk} FROM {table} WHERE {backend} = %s AND {status} = %s AND {free} ORDER BY {due} LIMIT 1"
    ledger, prices = quote(CostEntry._meta.db_table), quote(Price._meta.db_table)
    entry_column = {name: quote(CostEntry._meta.get_field(name).column) for name in ("generation", "kind", "price")}
    price_column = {name: quote(Price._meta.get_field(name).column) for name in ("id", "unit", "amount")}
    # The ledger holds one estimate per job (a constraint): at most one row.
    estimate = (
        f"LEFT JOIN {ledger} ON {ledger}.{entry_column['generation']} = {table}.{pk} AND "
        f"{ledger}.{entry_column['kind']} = %s LEFT JOIN {prices} ON {prices}.{price_column['id']} = "
        f"{ledger}.{entry_column['price']}"
    )
    estimate_columns = (
        f"{prices}.{price_column['id']} AS {quote('estimate_price_id')}, "
        f"{prices}.{price_column['unit']} AS {quote('estimate_price_unit')}, "
        f"{prices}.{price_column['amount']} AS {quote('estimate_amount')}"
    )
    in_flight = ", ".join(["%s"] * (1 + len(IN_FLIGHT)))  # submitting, and the in-flight states
    backends = quote(Backend._meta.db_table)
    backend_pk = quote(Backend._meta.pk.column)
    # `source`: the table, or a row set named as the table (so the columns and joins are the same text).
    read = (
        f"SELECT {_columns(meta)}, {_columns(Backend._meta)}, {has_images}, {estimate_columns} FROM {{source}} "
        f"INNER JOIN {backends} ON {backends}.{backend_pk} = {table}.{backend} {estimate}"
    )
    taken = quote("taken")
    take_next_queued = (
        f"UPDATE {table} SET {due} = %s, {lease} = %s WHERE {pk} = ({oldest_queued}) AND {status} = %s AND {free}"
    )
    sent_at, changed_at, prompt_sent, made_at = (
        quote(meta.get_field(name).column) for name in ("submitted_at", "updated_at", "prompt_sent", "created_at")
    )
    enabled, paused, circuit, cap = (
        f"{backends}.{quote(Backend._meta.get_field(name).column)}"
        for name in ("enabled", "paused_until", "circuit_open_until", "max_in_flight")
    )
    # The oldest queued job, if it is ready to be sent and its backend (read again) takes a job now: the count is of
    # the backend's jobs in flight as this transaction sees them, the job it ends no longer among them.
    takes_a_job = (
        f"SELECT 1 FROM {backends} WHERE {backends}.{backend_pk} = %s AND {enabled} AND ({paused} IS NULL OR "
        f"{paused} <= %s) AND {circuit} IS NULL AND {cap} > (SELECT COUNT(*) FROM {table} WHERE {backend} = %s AND "
        f"{status} IN ({in_flight}))"
    )
    hand_slot_on = (
        f"UPDATE {table} SET {status} = %s, {sent_at} = %s, {changed_at} = %s, {due} = %s, {lease} = %s "
        f"WHERE {pk} = ({oldest_queued}) AND {status} = %s AND {free} AND {prompt_sent} <> '' AND {made_at} > %s "
        f"AND EXISTS ({takes_a_job})"
    )
    job_columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
    return {
        "read": f"{read.format(source=table)} WHERE {table}.{pk} = %s",
        "lock_backend": f"SELECT {backend_pk} FROM {backends} WHERE {backend_pk} = %s FOR UPDATE",
        "in_flight": f"SELECT COUNT(*) FROM {table} WHERE {backend} = %s AND {status} IN ({in_flight})",
        "slots_taken": f"SELECT {backend}, COUNT(*) FROM {table} WHERE {status} IN ({in_flight}) GROUP BY {backend}",
        "take": (
            f"UPDATE {table} SET {due} = %s, {lease} = %s WHERE {pk} = %s AND {status} = %s AND {due} = %s AND {free}"
        ),
        # The outer conditions are checked again on the row itself: of two threads that chose the same job, the
        # second finds it leased (PostgreSQL re-reads a row it waited for) and takes nothing.
        "take_next_queued": f"{take_next_queued} RETURNING {pk}",
        # The read, of the row as the claim left it: RETURNING gives the version it updated, where the statement's
        # snapshot would give the one before.
        "take_next_queued_and_read": (
            f"WITH {taken} AS ({take_next_queued} RETURNING {job_columns}) {read.format(source=f'{taken} AS {table}')}"
        ),
        "hand_slot_on": f"{hand_slot_on} RETURNING {pk}",
        # The job's move to submitting, its timeline's entry and its read, in one statement.
        "hand_slot_on_and_read": (
            f"WITH {taken} AS ({hand_slot_on} RETURNING {job_columns}), {quote('moved')} AS "
            f"(INSERT INTO {event_table()} SELECT {taken}.{pk}, %s, %s, '' FROM {taken}) "
            f"{read.format(source=f'{taken} AS {table}')}"
        ),
        "wake_next_in_line": (
            f"UPDATE {table} SET {due} = %s WHERE {pk} = (SELECT {pk} FROM {table} WHERE {backend} = %s AND "
            f"{status} = %s AND {lease} IS NULL ORDER BY {due} LIMIT 1) AND {status} = %s"
        ),
        "fell_due": (
            f"SELECT 1 FROM {table} WHERE {status} IN ({', '.join(['%s'] * len(ACTIVE))}) "
            f"AND {due} > %s AND {due} <= %s LIMIT 1"
        ),
    }


@functools.cache
def _due_statement(vendor: str, saturated: int) -> str:
    quote = connection.ops.quote_name
    meta = Generation._meta
    pk, status, at, lease, backend = (
        quote(meta.get_field(name).column) for name in ("id", "status", "next_poll_at", "lease_until", "backend")
    )
    waiting = f" AND NOT ({status} = %s AND {backend} IN ({', '.join(['%s'] * saturated)}))" if saturated else ""
    return (
        f"SELECT {pk}, {at}, {status}, {backend} FROM {quote(meta.db_table)} "
        f"WHERE {status} IN ({', '.join(['%s'] * len(ACTIVE))}) AND {at} <= %s AND ({lease} IS NULL OR {lease} < %s)"
        f"{waiting} ORDER BY {at} LIMIT %s"
    )


def _columns(meta) -> str:
    table = connection.ops.quote_name(meta.db_table)
    return ", ".join(f"{table}.{connection.ops.quote_name(field.column)}" for field in meta.concrete_fields)


def _sql(name: str) -> str:
    return _statements(connection.vendor)[name]
