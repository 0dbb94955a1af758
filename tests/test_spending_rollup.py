"""The spending roll-ups are always the ledger summed: after any sequence of ledger writes, estimate moves,
settlements, deleted series and characters, edited characters; under concurrent writers; after a rebuild."""

import contextlib
import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models.deletion import RestrictedError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from characters.models import Character
from generations.billing import rollup
from generations.billing.models import (
    CharacterSpendingMonth,
    CostEntry,
    CostKind,
    SpendingDay,
    SpendingMonth,
    VideoSpendingMonth,
)
from generations.billing.reports import elsewhere, month
from generations.jobs.models import Generation
from generations.storyboards.models import Scene, Series
from tests.factories import make_character, make_dead_backend, make_generation, make_series, make_user

pytestmark = pytest.mark.django_db

FIRST_DAY = datetime(2026, 10, 25, 12, tzinfo=UTC)  # the days below cross into November
AMOUNTS = [Decimal("0.12"), Decimal("0.40"), Decimal("0.80"), Decimal("1.234567"), Decimal("6.00")]
COLUMN = {"estimate": "estimated", "charge": "charged", "refund": "refunded", "possible": "possible"}
COLUMN["settled"] = "settled"


# --- The oracle: the ledger summed in plain Python, entry by entry ---------------------------------


def ledger_summed() -> dict:
    """What each roll-up must hold, from the ledger rows and the jobs' characters as they are now."""
    days, months, characters, videos = (defaultdict(lambda: defaultdict(Decimal)) for _ in range(4))
    entries = list(CostEntry.objects.select_related("generation").order_by("pk"))
    refunded = {e.generation_id for e in entries if e.kind == CostKind.REFUND and e.generation_id}
    links = defaultdict(list)
    for generation_id, character_id in Generation.characters.through.objects.values_list("generation", "character"):
        links[generation_id].append(character_id)
    for e in entries:
        month = e.day.replace(day=1)
        video = e.kind == CostKind.CHARGE and e.generation_id is not None
        add = {COLUMN[e.kind]: e.amount, "videos": int(video), "entries": 1}
        rows = [
            days[(e.day, e.owner_id, e.backend_id)],
            months[(month, e.owner_id, e.backend_id, e.model, e.series_id)],
        ]
        rows += [characters[(month, e.owner_id, c)] for c in links.get(e.generation_id) or [None]]
        for row in rows:
            for name, value in add.items():
                row[name] += value
        g = e.generation
        if g is not None and e.kind in (CostKind.CHARGE, CostKind.REFUND):
            videos[(month, e.owner_id, g.model, g.seconds, g.size)]["net"] += (
                e.amount if e.kind == CostKind.CHARGE else -e.amount
            )
            if video and g.pk not in refunded:
                videos[(month, e.owner_id, g.model, g.seconds, g.size)]["kept"] += 1
    return {SpendingDay: days, SpendingMonth: months, CharacterSpendingMonth: characters, VideoSpendingMonth: videos}


def rollups_as_stored() -> dict:
    stored = {}
    for model, key in rollup.KEYS.items():
        stored[model] = {
            tuple(row[name] for name in key): {name: row[name] for name in rollup.VALUES[model]}
            for row in model.objects.values(*key, *rollup.VALUES[model])
        }
    return stored


def nonzero(rows: dict) -> dict:
    return {
        key: {name: value for name, value in values.items() if value}
        for key, values in rows.items()
        if any(values.values())
    }


def assert_rollups_equal_the_ledger():
    want, have = ledger_summed(), rollups_as_stored()
    for model in rollup.KEYS:
        assert nonzero(have[model]) == nonzero(want[model]), model.__name__
    assert rollup.differences() == []
    connection.check_constraints()  # no roll-up row points at a deleted series or character
    for model in (SpendingDay, SpendingMonth, CharacterSpendingMonth):  # no line of zeros where the ledger has none
        assert not model.objects.filter(entries=0).exists()


# --- A studio and the operations on it --------------------------------------------------------------


class Studio:
    """Two creators, two backends, two series and three characters; jobs made as the operations go."""

    def __init__(self):
        self.users = [make_user("ada"), make_user("bo")]
        self.backends = [
            make_dead_backend("Official", "openai_videos", prices=False),
            make_dead_backend("Aggregator", "task_api", prices=False, tier="aggregator"),
        ]
        self.series = [make_series(self.users[0], "Pilot"), make_series(self.users[1], "Pilot")]  # same title
        self.characters = [
            make_character(self.users[0], "rex"),
            make_character(self.users[0], "mossy"),
            make_character(self.users[1], "rex"),  # same handle, another creator
        ]
        self.jobs: list[Generation] = []

    def at(self, day: int):
        return mock.patch("django.utils.timezone.now", return_value=FIRST_DAY + timedelta(days=day, minutes=day))

    def start(self, owner, backend, series, characters, amount, day, seconds, size):
        owner = self.users[owner]
        scene = None
        if series is not None and Series.objects.filter(pk=self.series[series].pk).exists():
            scene = Scene.objects.create(series=self.series[series], prompt="p", position=len(self.jobs))
        job = make_generation(owner, self.backends[backend], scene=scene, seconds=seconds, size=size)
        with transaction.atomic(), self.at(day):  # as lifecycle.start: characters, then the estimate
            job.characters.set([c for c in self.alive(characters) if c.owner_id == owner.pk])
            CostEntry.objects.record(
                kind=CostKind.ESTIMATE, amount=amount, backend=job.backend, owner=owner, generation=job
            )
        self.jobs.append(job)

    def alive(self, indexes):
        existing = set(Character.objects.values_list("pk", flat=True))
        return [self.characters[i] for i in indexes if self.characters[i].pk in existing]

    def job(self, index):
        """A job as a worker would load it now (its scene may have gone with its series)."""
        return Generation.objects.get(pk=self.jobs[index % len(self.jobs)].pk) if self.jobs else None

    def record(self, index, kind, amount, day):
        job = self.job(index)
        if job is None:
            return
        estimate = job.cost_entries.filter(kind=CostKind.ESTIMATE).first()
        with self.at(day):
            CostEntry.objects.record_once(
                kind=kind,
                amount=amount or AMOUNTS[0] if estimate is None else estimate.amount,
                backend=estimate.backend if estimate else job.backend,
                owner=job.owner,
                generation=job,
            )

    def bill(self, index, refund, day, later):
        """What the pipeline writes for a finished job: its charge, and a refund if it failed (later)."""
        self.record(index, CostKind.CHARGE, None, day)
        if refund:
            self.record(index, CostKind.REFUND, None, day + later)

    def fee(self, owner, backend, amount, day):
        with self.at(day):  # a character's fee: no job
            CostEntry.objects.record(
                kind=CostKind.CHARGE, amount=amount, backend=self.backends[backend], owner=self.users[owner]
            )

    def settle(self, index, confirm, day):
        job = self.job(index)
        if job is not None:
            # Confirming a job charged already is refused by the ledger (the pipeline never holds one
            # as possibly billed): a refused write leaves no trace in the roll-ups either.
            with self.at(day), contextlib.suppress(IntegrityError), transaction.atomic():
                CostEntry.objects.settle(job, confirm=confirm, by="admin")

    def move(self, index, backend, amount):
        job = self.job(index)
        if job is not None:
            with transaction.atomic():
                CostEntry.objects.move_estimate(job, self.backends[backend], amount, None, "moved")

    def delete_series(self, index):
        Series.objects.filter(pk=self.series[index].pk).delete()

    def delete_character(self, index):
        Character.objects.filter(pk=self.characters[index].pk).delete()

    def edit_characters(self, index, characters):
        job = self.job(index)
        if job is not None:
            with transaction.atomic():
                job.characters.set([c for c in self.alive(characters) if c.owner_id == job.owner_id])


days = st.integers(0, 12)
amounts = st.sampled_from(AMOUNTS)
some_characters = st.lists(st.integers(0, 2), max_size=2, unique=True)
start = st.tuples(
    st.just("start"),
    st.integers(0, 1),
    st.integers(0, 1),
    st.none() | st.integers(0, 1),
    some_characters,
    amounts,
    days,
    st.sampled_from([4, 8]),
    st.sampled_from(["720x1280", "1792x1024"]),
)
record = st.tuples(
    st.just("record"),
    st.integers(0, 20),
    st.sampled_from(["estimate", "charge", "charge", "refund", "refund", "possible", "settled"]),
    amounts,
    days,
)
bill = st.tuples(st.just("bill"), st.integers(0, 20), st.booleans(), days, st.integers(0, 20))
# Jobs first and most: the other operations act on the jobs made so far.
operations = st.one_of(
    start,
    start,
    bill,
    bill,
    record,
    st.tuples(st.just("fee"), st.integers(0, 1), st.integers(0, 1), amounts, days),
    st.tuples(st.just("settle"), st.integers(0, 20), st.booleans(), days),
    st.tuples(st.just("move"), st.integers(0, 20), st.integers(0, 1), amounts),
    st.tuples(st.just("delete_series"), st.integers(0, 1)),
    st.tuples(st.just("delete_character"), st.integers(0, 2)),
    st.tuples(st.just("edit_characters"), st.integers(0, 20), some_characters),
)


def start_(size="720x1280", characters=(), series=None):
    """A job of creator 0 on backend 0, estimated at $0.40 on day 0: an explicit example's first step."""
    return ("start", 0, 0, series, list(characters), AMOUNTS[1], 0, 4, size)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(operations, min_size=6, max_size=20))
# The cases each part of the roll-ups is there for, always run; hypothesis adds random mixes on top.
@example(steps=[start_("720x1280"), ("bill", 0, True, 3, 10)])  # refunded the next month: kept goes
@example(steps=[start_(characters=[0, 1]), start_(characters=[0]), ("bill", 0, False, 0, 0), ("delete_character", 0)])
@example(
    steps=[start_(characters=[0]), ("bill", 0, False, 0, 0), ("edit_characters", 0, [1]), ("edit_characters", 0, [])]
)
@example(steps=[start_(series=0), start_(), ("bill", 0, True, 1, 0), ("delete_series", 0)])
@example(steps=[start_(), ("move", 0, 1, AMOUNTS[2]), ("move", 0, 0, AMOUNTS[1]), ("bill", 0, False, 1, 0)])
@example(steps=[start_(), ("record", 0, "possible", AMOUNTS[0], 2), ("settle", 0, True, 3), ("settle", 0, False, 4)])
@example(steps=[start_(), ("bill", 0, False, 0, 0), ("record", 0, "possible", AMOUNTS[0], 0), ("settle", 0, True, 0)])
def test_the_rollups_always_equal_the_ledger(steps):
    with transaction.atomic():  # each example starts from an empty studio
        studio = Studio()
        for name, *args in steps:
            getattr(studio, name)(*args)
            assert_rollups_equal_the_ledger()
        reports_agree_with_the_ledger()
        rollup.rebuild()
        assert_rollups_equal_the_ledger()
        transaction.set_rollback(True)


def reports_agree_with_the_ledger():
    """The report's totals and lines are the ledger's, for every month the steps touched."""
    for year, month_number in {(2026, 10), (2026, 11)}:
        entries = list(month.month_entries(None, year, month_number).select_related("backend"))
        report = month.month_report(None, year, month_number, staff_view=True)
        total = defaultdict(Decimal)
        for e in entries:
            total[COLUMN[e.kind]] += e.amount
        assert report.total.charged == total["charged"] and report.total.refunded == total["refunded"]
        assert report.total.estimated == total["estimated"]
        assert report.total.possible == total["possible"] - total["settled"]
        by_backend = defaultdict(Decimal)
        for e in entries:
            sign = {CostKind.CHARGE: 1, CostKind.REFUND: -1}.get(e.kind, 0)
            by_backend[e.backend.name] += sign * e.amount
        assert {line.label: line.net for line in report.by["backend"]} == {k: v for k, v in by_backend.items()}
        actual, _ = elsewhere.elsewhere(None, year, month_number)
        assert actual == sum(
            (e.amount * {"charge": 1, "refund": -1}.get(e.kind, 0) for e in entries if e.generation_id), Decimal(0)
        )


# --- Named cases ------------------------------------------------------------------------------------


@pytest.fixture
def studio_objects(alice):
    official = make_dead_backend("Official", "openai_videos", prices=False)
    return alice, official


def charge(owner, backend, amount="0.40", **fields):
    job = make_generation(owner, backend, status="completed", **fields)
    for kind in (CostKind.ESTIMATE, CostKind.CHARGE):
        CostEntry.objects.record(kind=kind, amount=amount, backend=backend, owner=owner, generation=job)
    return job


def test_a_deleted_series_spend_shows_under_none_as_the_ledger_says(studio_objects):
    alice, official = studio_objects
    pilot = make_series(alice, "Pilot")
    charge(alice, official, scene=Scene.objects.create(series=pilot, prompt="p", position=1))
    charge(alice, official, "0.80")
    assert {line.label: line.net for line in month.month_report(alice).by["series"]} == {
        "(none)": Decimal("0.80"),
        "Pilot": Decimal("0.40"),
    }

    pilot.delete()

    assert {line.label: line.net for line in month.month_report(alice).by["series"]} == {"(none)": Decimal("1.20")}
    assert SpendingMonth.objects.count() == 1
    assert_rollups_equal_the_ledger()


def test_a_deleted_character_spend_shows_under_none(studio_objects):
    alice, official = studio_objects
    rex, mossy = make_character(alice, "rex"), make_character(alice, "mossy")
    both, alone = charge(alice, official), charge(alice, official, "0.80")
    both.characters.set([rex, mossy])  # set after the entries: as an admin editing the job would
    alone.characters.set([rex])
    assert {line.label: line.net for line in month.month_report(alice).by["character"]} == {
        "mossy": Decimal("0.40"),
        "rex": Decimal("1.20"),
    }

    rex.delete()

    assert {line.label: line.net for line in month.month_report(alice).by["character"]} == {
        "(none)": Decimal("0.80"),
        "mossy": Decimal("0.40"),
    }
    assert_rollups_equal_the_ledger()


def test_a_billed_job_is_deleted_only_with_its_creator(studio_objects, bob):
    alice, official = studio_objects
    job = charge(alice, official)
    charge(bob, official, "0.80")

    with pytest.raises(RestrictedError):
        job.delete()  # the ledger is history: the gallery's delete is soft
    alice.delete()

    assert month.month_report(None, staff_view=True).net == Decimal("0.80")
    assert_rollups_equal_the_ledger()


def test_the_admin_says_why_a_billed_job_cannot_be_deleted(client, studio_objects):
    alice, official = studio_objects
    job = charge(alice, official)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))

    response = client.post(reverse("admin:generations_generation_delete", args=[job.pk]), {"post": "yes"})

    assert response.status_code == 200 and "Cannot delete generation" in response.text
    assert Generation.objects.filter(pk=job.pk).exists()


def test_rebuild_spending_puts_back_what_the_ledger_says(studio_objects):
    alice, official = studio_objects
    charge(alice, official)
    SpendingMonth.objects.update(charged=Decimal("99"))  # as if written by a version without roll-ups
    CharacterSpendingMonth.objects.all().delete()
    VideoSpendingMonth.objects.all().delete()

    with pytest.raises(CommandError, match="differ from the ledger"):
        call_command("rebuild_spending", check=True, stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("rebuild_spending", stdout=out)
    assert "Rebuilt the spending roll-ups" in out.getvalue()
    out = StringIO()
    call_command("rebuild_spending", check=True, stdout=out)
    assert "agree with the ledger" in out.getvalue()
    assert month.month_report(alice).net == Decimal("0.40")
    assert_rollups_equal_the_ledger()


@pytest.mark.django_db(transaction=True)
def test_the_migration_sums_an_existing_ledger_into_the_rollups(alice):
    """An install upgraded with a ledger already full gets roll-ups that equal it."""
    from django.db.migrations.executor import MigrationExecutor

    official = make_dead_backend("Official", "openai_videos", prices=False)
    rex = make_character(alice, "rex")
    pilot = make_series(alice, "Pilot")
    job = charge(alice, official, scene=Scene.objects.create(series=pilot, prompt="p", position=1))
    job.characters.set([rex])
    refunded = charge(alice, official, "0.80", seconds=8)
    CostEntry.objects.record(kind=CostKind.REFUND, amount="0.80", backend=official, owner=alice, generation=refunded)
    CostEntry.objects.record(kind=CostKind.CHARGE, amount="0.05", backend=official, owner=alice)  # a fee
    executor = MigrationExecutor(connection)
    before, after = [("generations", "0014_fallback_attempts_possibly_billed")], executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(before)  # the roll-up tables go
        executor.loader.build_graph()
        executor.migrate(after)  # and come back, summed from the ledger by the migration
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert SpendingMonth.objects.exists()
    assert_rollups_equal_the_ledger()


# --- Concurrent writers -----------------------------------------------------------------------------


def run_in_threads(targets):
    barrier = threading.Barrier(len(targets))
    errors = []

    def worker(target):
        try:
            barrier.wait()
            target()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(target,)) for target in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_workers_charging_different_jobs_of_the_same_row_at_once_all_count(alice):
    """Eight workers, each charging its own job, all for the same day, creator, backend, model and series:
    the row is created once and every charge is added (PostgreSQL: real concurrent upserts on one row;
    SQLite: one writer at a time, no 'database is locked')."""
    official = make_dead_backend("Official", "openai_videos", prices=False)
    jobs = [make_generation(alice, official, status="completed") for _ in range(8)]

    def charge_one(job):
        def work():
            for kind in (CostKind.ESTIMATE, CostKind.CHARGE):
                with transaction.atomic():
                    CostEntry.objects.record(kind=kind, amount="0.40", backend=official, owner=alice, generation=job)

        return work

    run_in_threads([charge_one(job) for job in jobs])

    row = SpendingMonth.objects.get()
    assert (row.charged, row.estimated, row.videos, row.entries) == (Decimal("3.2"), Decimal("3.2"), 8, 16)
    assert_rollups_equal_the_ledger()


@pytest.mark.django_db(transaction=True)
def test_estimates_moving_while_other_jobs_are_charged_stay_counted_once(alice):
    """Fallback moves between two backends in both directions while jobs are charged on both."""
    a = make_dead_backend("A", "openai_videos", prices=False)
    b = make_dead_backend("B", "task_api", prices=False, tier="aggregator")
    amounts = iter(random.Random(7).choices(AMOUNTS, k=6))
    moving = []
    for i in range(6):
        job = make_generation(alice, (a, b)[i % 2])
        CostEntry.objects.record(
            kind=CostKind.ESTIMATE, amount="0.40", backend=job.backend, owner=alice, generation=job
        )
        moving.append(job)
    charged = [make_generation(alice, (a, b)[i % 2], status="completed") for i in range(6)]

    def move(job):
        to, amount = (b if job.backend == a else a), next(amounts)
        return lambda: CostEntry.objects.move_estimate(job, to, amount, None, "moved")

    def bill(job):
        return lambda: CostEntry.objects.record(
            kind=CostKind.CHARGE, amount="0.12", backend=job.backend, owner=alice, generation=job
        )

    run_in_threads([move(job) for job in moving] + [bill(job) for job in charged])

    assert_rollups_equal_the_ledger()
    assert month.month_report(alice).total.charged == Decimal("0.72")


def test_a_second_charge_is_refused_inside_the_transaction_without_a_savepoint(alice):
    """The ledger's constraint refuses a job's second charge in the insert itself (ON CONFLICT DO NOTHING): no
    savepoint, and the transaction goes on (a job's completion charges inside its state change's transaction).
    The first charge's roll-ups need no reads of their own: the insert brings the job's characters and refund."""
    official = make_dead_backend("Official", "openai_videos", prices=False)
    job = make_generation(alice, official, status="completed")
    job.characters.set([make_character(alice, "mossy"), make_character(alice, "fern")])
    charge = {"kind": CostKind.CHARGE, "amount": "0.40", "backend": official, "generation": job}
    with transaction.atomic(), CaptureQueriesContext(connection) as first:
        entry = CostEntry.objects.record_once(**charge)
    with transaction.atomic(), CaptureQueriesContext(connection) as second:
        assert CostEntry.objects.record_once(**{**charge, "amount": "9.00"}) is None
        Generation.objects.filter(pk=job.pk).update(progress=100)  # the transaction is still usable

    assert CostEntry.objects.get(generation=job, kind=CostKind.CHARGE) == entry
    assert Generation.objects.get(pk=job.pk).progress == 100
    statements = [query["sql"] for query in [*first.captured_queries, *second.captured_queries]]
    assert not [sql for sql in statements if "SAVEPOINT" in sql.upper()]
    assert not [sql for sql in statements if sql.startswith("SELECT")], statements  # read in the insert
    assert CharacterSpendingMonth.objects.filter(charged=Decimal("0.40")).count() == 2
    assert VideoSpendingMonth.objects.get().kept == 1
    assert_rollups_equal_the_ledger()


@pytest.mark.django_db(transaction=True)
def test_workers_charging_the_same_job_at_once_charge_it_once(alice):
    """Four workers charge one job at the same moment (PostgreSQL: real concurrent inserts, the later ones wait
    for the first to commit and then find its entry): one charge, one roll-up addition."""
    official = make_dead_backend("Official", "openai_videos", prices=False)
    job = make_generation(alice, official, status="completed")
    recorded = []

    def charge():
        with transaction.atomic():
            recorded.append(
                CostEntry.objects.record_once(kind=CostKind.CHARGE, amount="0.40", backend=official, generation=job)
            )

    run_in_threads([charge] * 4)

    assert len([entry for entry in recorded if entry is not None]) == 1
    assert SpendingMonth.objects.get().charged == Decimal("0.40")
    assert_rollups_equal_the_ledger()


def test_a_ledger_write_s_roll_up_additions_all_apply_and_fail_as_django_s_errors(alice):
    """On PostgreSQL with prepared statements (the default), the additions go as one pipeline of statements: all
    applied (in one round trip); an error in one surfaces as Django's own error class, whatever the pipeline does."""
    from django.db import DatabaseError

    from generations.billing.upsert import add_all

    backend = make_dead_backend()
    day, month_start = FIRST_DAY.date(), FIRST_DAY.date().replace(day=1)
    key = {"owner_id": alice.pk, "backend_id": backend.pk}
    amounts = {"estimated": Decimal("0.40"), "entries": 1}
    with CaptureQueriesContext(connection) as statements:
        add_all(
            [
                (SpendingDay, {"day": day, **key}, amounts),
                (SpendingMonth, {"month": month_start, **key, "model": "sora-2", "series_id": None}, amounts),
            ]
        )
    pipelined = connection.vendor == "postgresql" and connection.settings_dict["OPTIONS"].get("server_side_binding")
    assert len(statements) == (2 if pipelined or connection.vendor != "postgresql" else 1)
    assert SpendingDay.objects.get(day=day, **key).estimated == Decimal("0.40")
    assert SpendingMonth.objects.get(month=month_start, **key).estimated == Decimal("0.40")

    # No unique index is on (day, owner) alone: the database refuses the second addition's ON CONFLICT.
    with pytest.raises(DatabaseError), transaction.atomic():
        add_all(
            [(SpendingDay, {"day": day, **key}, amounts), (SpendingDay, {"day": day, "owner_id": alice.pk}, amounts)]
        )
    assert SpendingDay.objects.get(day=day, **key).estimated == Decimal("0.40"), "the failed write left nothing"
