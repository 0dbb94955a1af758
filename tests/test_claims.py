"""The pipeline's claims on jobs (generations.jobs.claims), one statement each: a job is leased only while nobody
holds it and only if it is still as the claimer saw it, and a freed slot goes to the longest-waiting queued job."""

from datetime import timedelta

import pytest
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations.jobs import claims
from generations.jobs.models import Generation
from generations.states import Status
from tests.factories import make_dead_backend, make_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend():
    return make_dead_backend()


def test_a_job_is_taken_once_and_only_as_it_was_seen(alice, backend, settings):
    now = timezone.now()
    due = now - timedelta(seconds=1)
    job = make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=due)

    assert claims.take(job.pk, Status.IN_PROGRESS, due, now) is None, "its status moved on since"
    assert claims.take(job.pk, Status.SUBMITTED, due + timedelta(microseconds=1), now) is None, "its due time moved"
    with CaptureQueriesContext(connection) as statements:
        lease = claims.take(job.pk, Status.SUBMITTED, due, now)
    assert len(statements) == 1
    assert lease == now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    job.refresh_from_db()
    assert job.lease_until == lease and job.next_poll_at == now + claims.HANDOUT_GRACE

    assert claims.take(job.pk, Status.SUBMITTED, job.next_poll_at, now) is None, "held: nobody takes it again"
    later = lease + timedelta(seconds=1)
    assert claims.take(job.pk, Status.SUBMITTED, job.next_poll_at, later), "a lease that ran out (a dead worker)"


def test_a_freed_slot_goes_to_the_longest_waiting_queued_job_of_that_backend(alice, backend):
    now = timezone.now()
    other = make_dead_backend("Other")
    make_generation(alice, other, status=Status.QUEUED, next_poll_at=now - timedelta(minutes=9))  # another backend
    make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=now - timedelta(minutes=8))  # not queued
    make_generation(
        alice,
        backend,
        status=Status.QUEUED,
        next_poll_at=now - timedelta(minutes=7),
        lease_until=now + timedelta(minutes=1),
    )
    oldest = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now - timedelta(minutes=5))
    newer = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now - timedelta(minutes=1))
    # Sent back to wait for a slot (or a registration, or a pause): a freed slot is its turn, as wake_next_in_line
    # would make it due.
    waiting = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now + timedelta(minutes=1))

    with CaptureQueriesContext(connection) as statements:
        taken, lease = claims.take_next_queued(backend.pk, now)
    # The claim and the read of what it took: one statement on PostgreSQL, the read after it elsewhere.
    assert len(statements) == (1 if connection.vendor == "postgresql" else 2)
    assert taken.pk == oldest.pk and Generation.objects.get(pk=oldest.pk).lease_until == lease
    assert claims.take_next_queued(backend.pk, now)[0].pk == newer.pk
    assert claims.take_next_queued(backend.pk, now)[0].pk == waiting.pk
    assert claims.take_next_queued(backend.pk, now) == (None, None), "the rest are held or on another backend"


def test_the_job_a_freed_slot_goes_to_is_read_as_the_claim_left_it(alice, backend):
    """Its first step starts from this account (no read of its own), so it must be what `read` gives: the row after
    the claim, its backend, its images and its estimate's price."""
    from django.core.files.base import ContentFile

    from generations.billing.models import CostEntry, CostKind
    from generations.jobs.models import GenerationImage

    now = timezone.now()
    job = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now - timedelta(seconds=3))
    price = backend.prices.get(model="sora-2", size="")
    CostEntry.objects.record(kind=CostKind.ESTIMATE, amount="0.40", backend=backend, generation=job, price=price)
    image = GenerationImage(generation=job, role="start", width=720, height=1280)
    image.image.save("start.jpg", ContentFile(b"jpeg"), save=False)
    image.save()

    taken, lease = claims.take_next_queued(backend.pk, now)

    assert taken.lease_until == lease and taken.next_poll_at == now + claims.HANDOUT_GRACE, "the claim's own values"
    read = claims.read(job.pk)
    fields = [field.attname for field in Generation._meta.concrete_fields]
    assert [getattr(taken, name) for name in fields] == [getattr(read, name) for name in fields]
    backend_fields = [field.attname for field in type(backend)._meta.concrete_fields]
    assert [getattr(taken.backend, name) for name in backend_fields] == [
        getattr(read.backend, name) for name in backend_fields
    ]
    assert taken.has_images is True
    assert taken.estimate_price == read.estimate_price == (backend.pk, (price.pk, price.unit, price.amount))


def test_a_freed_slot_makes_the_next_queued_job_due_now(alice, backend):
    now = timezone.now()
    held = make_generation(
        alice, backend, status=Status.QUEUED, next_poll_at=now - timedelta(minutes=3), lease_until=now
    )
    first = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now + timedelta(seconds=5))
    second = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now + timedelta(seconds=9))

    claims.wake_next_in_line(backend.pk, now)

    due = dict(Generation.objects.values_list("pk", "next_poll_at"))
    assert due[first.pk] == now, "the longest-waiting one nobody holds"
    assert due[second.pk] == now + timedelta(seconds=9) and due[held.pk] == now - timedelta(minutes=3)


def test_the_look_out_sees_a_job_that_fell_due_since_the_last_tick(alice, backend):
    now = timezone.now()
    make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=now - timedelta(seconds=2))

    assert not claims.fell_due(now - timedelta(seconds=1), now), "due before the last tick: the tick saw it"
    make_generation(alice, backend, status=Status.IN_PROGRESS, next_poll_at=now - timedelta(milliseconds=10))
    assert claims.fell_due(now - timedelta(seconds=1), now)
    assert not claims.fell_due(now, now + timedelta(seconds=1))


def test_a_step_reads_its_job_with_its_backend_and_whether_it_has_images_in_one_statement(alice, backend):
    from django.core.files.base import ContentFile

    from generations.billing.models import CostEntry, CostKind
    from generations.jobs.models import GenerationImage

    plain = make_generation(
        alice,
        backend,
        status=Status.SUBMITTED,
        remote_id="video_1",
        progress=40,
        characters_sent=["ch_1"],
        characters_travel={"rex": "its id"},
        webhook=True,
        next_poll_at=timezone.now(),
    )
    price = backend.prices.get(model="sora-2", size="")
    CostEntry.objects.record(kind=CostKind.ESTIMATE, amount="0.40", backend=backend, generation=plain, price=price)
    framed = make_generation(alice, backend)
    image = GenerationImage(generation=framed, role="start", width=720, height=1280)
    image.image.save("start.jpg", ContentFile(b"jpeg"), save=False)
    image.save()

    with CaptureQueriesContext(connection) as statements:
        read = claims.read(plain.pk)
        assert (read.status, read.remote_id, read.progress, read.created_at) == (
            Status.SUBMITTED,
            "video_1",
            40,
            plain.created_at,
        )
        assert read.uuid == plain.uuid and read.backend.name == backend.name and read.has_images is False
    assert len(statements) == 1, "the backend and the estimate's price came with it"
    # Every field as the ORM gives it (dates, JSON, flags, the sealed key).
    orm = Generation.objects.select_related("backend").get(pk=plain.pk)
    for model, mine, theirs in ((Generation, read, orm), (type(backend), read.backend, orm.backend)):
        for field in model._meta.concrete_fields:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.attname
    assert read.backend.key == backend.key
    assert read.estimate_price == (backend.pk, (price.pk, price.unit, price.amount))
    assert str(read.estimate_price[1][2]) == str(price.amount), "the amount as the ORM gives it"
    assert claims.read(framed.pk).has_images is True
    assert claims.read(framed.pk).estimate_price == (backend.pk, None), "no estimate"
    assert claims.read(framed.pk + 1000) is None


def test_a_state_change_is_a_compare_and_set_with_one_timeline_entry(alice, backend):
    job = make_generation(alice, backend, status=Status.SUBMITTED)
    sent = timezone.now()

    with CaptureQueriesContext(connection) as statements:
        assert job.transition(
            [Status.SUBMITTED, Status.IN_PROGRESS],
            Status.COMPLETED,
            completed_at=sent,
            video="generations/1/video.mp4",
            progress=100,
            lease_until=None,
        )
    if connection.vendor == "postgresql":
        assert len(statements) == 1, "the UPDATE and its timeline entry in one statement: one round trip"
    else:
        assert len(statements) == 2, "one UPDATE, one timeline entry"
    assert not job.transition(Status.SUBMITTED, Status.FAILED, error_message="too late"), "it moved on already"
    stored = Generation.objects.get(pk=job.pk)
    assert (stored.status, stored.completed_at, stored.video.name, stored.progress) == (
        Status.COMPLETED,
        sent,
        "generations/1/video.mp4",
        100,
    )
    assert [(e.status, e.at) for e in stored.events.all()] == [(Status.COMPLETED, stored.updated_at)]

    # A move that sets a relation, a JSON value and an expression (a fallback's) is written as the ORM writes it.
    other = make_dead_backend("Other")
    assert stored.transition(
        Status.COMPLETED, Status.QUEUED, backend=other, characters_sent=["ch_1"], attempts=models.F("attempts") + 1
    )
    moved = Generation.objects.get(pk=job.pk)
    assert (moved.backend_id, moved.characters_sent, moved.attempts) == (other.pk, ["ch_1"], job.attempts + 1)


def test_only_a_pump_thread_takes_a_freed_slot_s_next_job_itself():
    """A job that ends on a pump's own thread leaves its backend's next queued job to that thread (take_next_queued)
    instead of making it due for the pump to find: one statement fewer in the completing transaction."""
    import threading

    assert not claims.on_pump_thread()
    with claims.pump_thread():
        assert claims.on_pump_thread()
        elsewhere = []
        thread = threading.Thread(target=lambda: elsewhere.append(claims.on_pump_thread()))
        thread.start()
        thread.join()
        assert elsewhere == [False], "another thread (a task worker) still wakes the pump"
    assert not claims.on_pump_thread()


def test_the_pump_reads_due_jobs_nobody_holds_longest_due_first_leaving_full_backends_queued_jobs(alice, backend):
    now = timezone.now()
    full = make_dead_backend("Full")
    ago = [now - timedelta(minutes=minutes) for minutes in range(10)]
    polled = make_generation(alice, full, status=Status.SUBMITTED, next_poll_at=ago[5])  # a full backend's poll
    waiting = make_generation(alice, full, status=Status.QUEUED, next_poll_at=ago[9])  # for a slot there
    queued = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=ago[7])
    make_generation(alice, backend, status=Status.IN_PROGRESS, next_poll_at=ago[8], lease_until=now + timedelta(1))
    expired = make_generation(alice, backend, status=Status.IN_PROGRESS, next_poll_at=ago[3], lease_until=ago[1])
    make_generation(alice, backend, status=Status.COMPLETED, next_poll_at=ago[9])  # ended
    make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=now + timedelta(seconds=5))  # not yet

    with CaptureQueriesContext(connection) as statements:
        due = claims.due(now, [full.pk], limit=10)
    assert len(statements) == 1
    assert [pk for pk, *_ in due] == [queued.pk, polled.pk, expired.pk]
    assert due[0] == (queued.pk, ago[7], Status.QUEUED, backend.pk)
    assert [pk for pk, *_ in claims.due(now, [], limit=2)] == [
        waiting.pk,
        queued.pk,
    ]
    # What it read is what a claim compares: the due time comes back exactly as stored.
    assert claims.take(queued.pk, Status.QUEUED, due[0][1], now)


def test_the_pump_counts_taken_slots_per_backend_from_the_jobs_in_flight(alice, backend):
    other = make_dead_backend("Other")
    for status in (Status.SUBMITTING, Status.SUBMITTED, Status.IN_PROGRESS, Status.QUEUED, Status.COMPLETED):
        make_generation(alice, backend, status=status)
    make_generation(alice, other, status=Status.IN_PROGRESS)

    with CaptureQueriesContext(connection) as statements:
        taken = claims.slots_taken()
    assert len(statements) == 1
    assert taken == {backend.pk: 3, other.pk: 1}


def _ending(alice, backend, **waiting):
    """A backend with one slot, taken by a running job, and a queued job ready to be sent (unless `waiting` says
    otherwise): the running job ends inside the transaction the caller opens, as lifecycle.complete ends it."""
    now = timezone.now()
    running = make_generation(alice, backend, status=Status.IN_PROGRESS, next_poll_at=now)
    queued = make_generation(
        alice, backend, **{"status": Status.QUEUED, "prompt_sent": "A paper boat", "next_poll_at": now, **waiting}
    )
    return running, queued


def _end_and_hand_on(running, now=None, statements=None):
    """End `running` and hand its slot on, in one transaction; `statements`: capture the hand-over's."""
    from contextlib import nullcontext

    from django.db import transaction

    now = now or timezone.now()
    backend = type(running.backend).objects.get(pk=running.backend_id)  # as the job's step read it
    with transaction.atomic():
        assert running.transition(Status.IN_PROGRESS, Status.COMPLETED, completed_at=now, next_poll_at=None)
        with statements if statements is not None else nullcontext():
            return claims.hand_slot_on(backend, now, now - timedelta(hours=1))


def test_a_job_that_ends_hands_its_slot_to_the_next_queued_job_in_the_same_transaction(alice):
    backend = make_dead_backend(max_in_flight=1)
    running, queued = _ending(alice, backend)
    estimate = backend.prices.get(model="sora-2", size="")
    from generations.billing.models import CostEntry, CostKind

    CostEntry.objects.record(kind=CostKind.ESTIMATE, amount="0.40", backend=backend, generation=queued, price=estimate)
    now = timezone.now()

    statements = CaptureQueriesContext(connection)
    handed, lease = _end_and_hand_on(running, now, statements)

    moved = Generation.objects.get(pk=queued.pk)
    assert handed.pk == queued.pk and handed.slot_handed_on, "marked for its thread: its create goes out next"
    assert moved.status == Status.SUBMITTING and moved.lease_until == lease and moved.submitted_at == now
    assert [(e.status, e.at) for e in moved.events.all()] == [(Status.SUBMITTING, now)]
    # No lock of the backend and no claim of its own: the slot came free in this transaction. One statement on
    # PostgreSQL (with the timeline's entry and the read); elsewhere the move, the entry, then the read.
    assert len(statements) == (1 if connection.vendor == "postgresql" else 3)
    assert not [q["sql"] for q in statements if "FOR UPDATE" in q["sql"]]
    fields = [field.attname for field in Generation._meta.concrete_fields]
    read = claims.read(queued.pk)
    assert [getattr(handed, name) for name in fields] == [getattr(read, name) for name in fields]
    assert handed.estimate_price == read.estimate_price == (backend.pk, (estimate.pk, estimate.unit, estimate.amount))
    assert not getattr(read, "slot_handed_on", False), "a job read again (its thread died) is a lost submit"


@pytest.mark.parametrize(
    "why",
    ["disabled", "paused", "circuit open", "slots cut", "characters to bind", "too old", "held", "none queued"],
)
def test_nothing_is_handed_on_where_a_submit_would_not_send_the_job_now(alice, why):
    now = timezone.now()
    backend = make_dead_backend(max_in_flight=1)
    waiting = {
        "characters to bind": {"prompt_sent": ""},
        "too old": {"created_at": now - timedelta(hours=2)},
        "held": {"lease_until": now + timedelta(minutes=1)},
        "none queued": {"status": Status.CANCELLED},
    }.get(why, {})
    running, queued = _ending(alice, backend, **waiting)
    if "created_at" in waiting:
        Generation.objects.filter(pk=queued.pk).update(created_at=waiting["created_at"])  # auto_now_add on create
    step_read = type(backend).objects.get(pk=backend.pk)  # as the job's step read it, before an admin (or a 429)
    changed = {
        "disabled": {"enabled": False},
        "paused": {"paused_until": now + timedelta(seconds=30)},
        "circuit open": {"circuit_open_until": now + timedelta(seconds=30)},
        "slots cut": {"max_in_flight": 0},
    }.get(why, {})
    type(backend).objects.filter(pk=backend.pk).update(**changed)
    from django.db import transaction

    with transaction.atomic():
        assert running.transition(Status.IN_PROGRESS, Status.COMPLETED, completed_at=now, next_poll_at=None)
        assert claims.hand_slot_on(step_read, now, now - timedelta(hours=1)) == (None, None)

    assert Generation.objects.get(pk=queued.pk).status == waiting.get("status", Status.QUEUED)


def test_a_slot_is_handed_on_only_while_the_backend_has_one_to_spare(alice):
    """Two jobs of a backend with two slots end at once and a third is in flight: each hands its slot on, and the
    backend never has more jobs in flight than slots."""
    backend = make_dead_backend(max_in_flight=2)
    first, queued = _ending(alice, backend)
    second = make_generation(alice, backend, status=Status.IN_PROGRESS, next_poll_at=timezone.now())
    later = make_generation(alice, backend, status=Status.QUEUED, prompt_sent="Later", next_poll_at=timezone.now())
    make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=timezone.now())  # over the cap already

    assert _end_and_hand_on(first) == (None, None), "three in flight on two slots: ending one leaves none to spare"
    assert _end_and_hand_on(second)[0].pk == queued.pk
    assert claims.in_flight(backend.pk) == 2 and Generation.objects.get(pk=later.pk).status == Status.QUEUED
