"""One pump at a time: a burst of new jobs starts one, a shift hands over to its successor, and the
free-slot count reads only the jobs in flight."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generations.jobs import pump
from generations.jobs.models import Generation
from generations.states import Status
from tests.factories import make_dead_backend, make_generation

pytestmark = pytest.mark.django_db


def test_a_burst_of_callers_starts_one_pump_and_a_lost_start_is_replaced(settings):
    assert [pump.claim_start() for _ in range(50)].count(True) == 1
    assert pump.acquire("the-pump", 10), "the pump that was started takes the lease"
    assert not pump.claim_start(), "none while it runs"
    pump.release("the-pump")
    assert pump.claim_start(), "a new one once it stopped"


def test_a_shift_keeps_the_lease_for_its_successor():
    assert pump.run(seconds=0.01, tick_seconds=0.01, hand_over_at_end=True)
    assert not pump.claim_start(), "no second pump while the successor is on its way"
    assert pump.acquire("successor", 10)


def test_free_slots_count_only_the_jobs_in_flight(alice):
    backend = make_dead_backend(max_in_flight=4)
    for status in [Status.COMPLETED] * 30 + [Status.FAILED] * 10 + [Status.SUBMITTED, Status.IN_PROGRESS]:
        make_generation(alice, backend, status=status)
    make_generation(alice, backend, status=Status.SUBMITTING)

    with CaptureQueriesContext(connection) as queries:
        free = pump._free_slots(pump.timezone.now())

    assert free == {backend.pk: 1}
    assert len(queries) == 2
    assert all("JOIN" not in q["sql"].upper() for q in queries), "no join over the generations' history"
    assert Generation.objects.count() == 43


def test_the_pump_wakes_when_a_job_falls_due_not_at_its_next_tick(alice):
    import time

    from django.utils import timezone

    backend = make_dead_backend()
    ticked_at = timezone.now()
    stuck = make_generation(alice, backend, next_poll_at=ticked_at - timezone.timedelta(seconds=1))  # no free slot
    make_generation(alice, backend, next_poll_at=ticked_at + timezone.timedelta(seconds=0.2))

    started = time.monotonic()
    pump._sleep_until_due(5.0, None, ticked_at)
    waited = time.monotonic() - started

    assert 0.15 < waited < 2.5, "woken by the job that fell due, long before the 5 s tick"
    assert stuck.next_poll_at < ticked_at, "a job already due at the last tick did not wake it at once"


@pytest.mark.django_db(transaction=True)  # the pump's threads have their own connections: they must see the rows
def test_a_due_step_runs_on_a_pump_thread_and_a_poll_due_soon_stays_there(alice, monkeypatch, held_tasks):
    import threading

    from django.utils import timezone

    from generations.jobs import lifecycle

    backend = make_dead_backend()
    now = timezone.now()
    job = make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=now)
    ran, known_to_steps, left = [], [], []

    def step(pk, held_until, known=None):
        ran.append((pk, threading.current_thread().name))
        known_to_steps.append(known)
        if len(ran) == 1:  # the provider hints the next poll in 0.1 s
            Generation.objects.filter(pk=pk).update(
                next_poll_at=timezone.now() + timezone.timedelta(seconds=0.1), lease_until=None
            )
        else:
            Generation.objects.filter(pk=pk).update(status=Status.COMPLETED, next_poll_at=None, lease_until=None)
        left.append(Generation.objects.get(pk=pk))  # the job as the step left it
        return left[-1]

    monkeypatch.setattr(lifecycle, "advance", step)
    assert pump.run(seconds=1.0, tick_seconds=0.05, threads=2)

    assert [pk for pk, _ in ran] == [job.pk, job.pk], "polled again once the hint passed, then done"
    assert ran[0][1] == ran[1][1] and ran[0][1].startswith("pump-step"), "both on the same pump thread"
    assert known_to_steps == [None, left[0]], "the held step starts from the job as the first left it (no read)"
    assert held_tasks == [], "nothing went through the task queue"


def test_steps_no_thread_is_free_for_go_to_the_task_queue(alice, held_tasks):
    backend = make_dead_backend()
    now = pump.timezone.now()
    jobs = [make_generation(alice, backend, status=Status.SUBMITTED, next_poll_at=now) for _ in range(3)]
    hands = pump.Hands(0)  # every thread busy

    assert pump.tick(hands=hands) == 3
    assert sorted(args for func, args in held_tasks if func == "generations.tasks.advance") == [(j.pk,) for j in jobs]


@pytest.mark.django_db(transaction=True)
def test_a_job_that_frees_a_slot_hands_it_to_its_backends_next_queued_job_on_the_same_thread(
    alice, monkeypatch, held_tasks
):
    import threading

    from django.utils import timezone

    from generations.jobs import lifecycle

    backend = make_dead_backend(max_in_flight=1)
    now = timezone.now()
    running = make_generation(alice, backend, status=Status.SUBMITTED, submitted_at=now, next_poll_at=now)
    waiting = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now + timezone.timedelta(seconds=0.2))
    ran = []

    def step(pk, held_until, known=None):
        ran.append((pk, threading.current_thread().name))
        # Each step finishes its job at once (the first frees the backend's one slot; the second was queued).
        Generation.objects.filter(pk=pk).update(
            status=Status.COMPLETED, submitted_at=timezone.now(), next_poll_at=None, lease_until=None
        )
        if pk == running.pk:  # what lifecycle.complete does: the next in line falls due now
            Generation.objects.filter(pk=waiting.pk).update(next_poll_at=timezone.now())
        return Generation.objects.get(pk=pk)

    monkeypatch.setattr(lifecycle, "advance", step)
    assert pump.run(seconds=0.15, tick_seconds=5, threads=1)  # no second tick: the thread itself moves on

    assert [pk for pk, _ in ran] == [running.pk, waiting.pk]
    assert ran[0][1] == ran[1][1], "the queued job ran on the thread its slot came free on"
    assert held_tasks == [], "not through the task queue"


@pytest.mark.django_db(transaction=True)
def test_a_shift_ends_with_its_threads_and_their_database_connections(monkeypatch):
    import threading

    from django.db import connections

    closed = []
    real_close_all = connections.close_all

    def close_all():
        closed.append(threading.current_thread().name)
        real_close_all()

    monkeypatch.setattr(connections, "close_all", close_all)
    assert pump.run(seconds=0.05, tick_seconds=0.01, threads=3)

    assert not [t for t in threading.enumerate() if t.name.startswith("pump-step")], "no thread outlives its shift"
    assert sorted(closed) == ["pump-step-0", "pump-step-1", "pump-step-2"], "each closed its own connections"


def test_the_loop_looks_for_overdue_jobs_at_once_and_then_every_few_seconds_not_every_tick(monkeypatch):
    swept = []
    monkeypatch.setattr(pump, "sweep", lambda now=None: swept.append(now) or 0)

    assert pump.run(seconds=0.6, tick_seconds=0.05, threads=0)
    assert len(swept) == 1, "at its first tick; the next is SWEEP_SECONDS later"

    swept.clear()
    monkeypatch.setattr(pump, "SWEEP_SECONDS", 0.1)
    assert pump.run(seconds=0.6, tick_seconds=0.05, threads=0)
    assert 3 <= len(swept) <= 7


def test_a_slot_freed_as_the_shift_ends_makes_the_next_queued_job_due_for_the_next_pump(alice, monkeypatch):
    """A pump's thread takes the next queued job of a slot it freed itself (so the job's completion does not wake
    the pump for it), but not once its shift ends: that job falls due now, for the next pump to take at once."""
    from django.utils import timezone

    from generations.jobs import claims, lifecycle

    backend = make_dead_backend(max_in_flight=1)
    now = timezone.now()
    running = make_generation(alice, backend, status=Status.SUBMITTED, submitted_at=now, next_poll_at=now)
    waiting = make_generation(alice, backend, status=Status.QUEUED, next_poll_at=now + timezone.timedelta(minutes=1))

    def step(pk, held_until, known=None):
        Generation.objects.filter(pk=pk).update(status=Status.COMPLETED, next_poll_at=None, lease_until=None)
        return Generation.objects.get(pk=pk)

    monkeypatch.setattr(lifecycle, "advance", step)
    hands = pump.Hands(0)
    hands.stopping = True
    with claims.pump_thread():
        hands._steps(running.pk, claims.take(running.pk, Status.SUBMITTED, now, now))

    waiting.refresh_from_db()
    assert waiting.status == Status.QUEUED and waiting.lease_until is None, "left for the next pump"
    assert waiting.next_poll_at <= timezone.now(), "due now, not in a minute"


class _Provider:
    """A provider whose job is still running, hinting the next poll in `hint` seconds."""

    def __init__(self, hint):
        self.hint = hint

    def retrieve(self, remote_id):
        from generations.providers.base import RemoteJob

        return RemoteJob(id=remote_id, status="in_progress", progress=30, poll_after=self.hint)


def _polled(alice, monkeypatch, hint, *, on_pump_thread):
    """A running job polled once by lifecycle.poll under a lease, on a pump's thread or not: the job as stored."""
    from django.utils import timezone

    from generations.jobs import claims, lifecycle
    from generations.providers.models import Backend

    backend = make_dead_backend(f"Official {hint} {on_pump_thread}")
    monkeypatch.setattr(Backend, "client", lambda self: _Provider(hint))
    now = timezone.now()
    job = make_generation(alice, backend, status=Status.SUBMITTED, remote_id="video_1", next_poll_at=now)
    held = claims.take(job.pk, Status.SUBMITTED, now, now)
    generation = claims.read(job.pk)
    if on_pump_thread:
        with claims.pump_thread():
            lifecycle.poll(generation)
    else:
        lifecycle.poll(generation)
    stored = Generation.objects.get(pk=job.pk)
    assert stored.lease_until == generation.lease_until, "the step's account of the job is what it wrote"
    return held, stored


def test_a_pump_thread_keeps_a_job_whose_next_poll_is_moments_away_under_a_new_lease(alice, monkeypatch):
    """No claim between two polls 0.1 s apart: the step's own write renews the lease, and the pump hands the job to
    nobody else meanwhile."""
    from django.utils import timezone

    from generations.jobs import claims

    held, stored = _polled(alice, monkeypatch, 0.1, on_pump_thread=True)

    assert stored.lease_until is not None and stored.lease_until > held, "a new lease, not the one the step ran under"
    assert stored.next_poll_at <= timezone.now() + timezone.timedelta(seconds=claims.HOLD_SECONDS)
    soon = stored.next_poll_at + timezone.timedelta(seconds=1)
    assert stored.pk not in [pk for pk, *_ in claims.due(soon, [], 10)], "not handed out while kept"


def test_a_job_goes_back_to_the_pump_from_a_task_worker_or_when_its_next_poll_is_far(alice, monkeypatch):
    _, from_a_worker = _polled(alice, monkeypatch, 0.1, on_pump_thread=False)
    assert from_a_worker.lease_until is None

    _, far = _polled(alice, monkeypatch, 5, on_pump_thread=True)
    assert far.lease_until is None, "a thread does not wait seconds for one job"


@pytest.mark.django_db(transaction=True)
def test_a_kept_job_is_polled_on_its_thread_with_no_claim_and_let_go_when_the_shift_ends(alice, monkeypatch):
    from django.utils import timezone

    from generations.jobs import claims, lifecycle

    backend = make_dead_backend()
    now = timezone.now()
    job = make_generation(alice, backend, status=Status.SUBMITTED, remote_id="video_1", next_poll_at=now)
    steps, claimed = [], []

    def step(pk, held_until, known=None):
        steps.append((held_until, known))
        if len(steps) == 2:
            hands.stopping = True  # the shift ends during the second step
        # Each step keeps the job, as lifecycle.poll does on a pump thread for a poll 0.05 s away.
        due = timezone.now() + timezone.timedelta(seconds=0.05)
        Generation.objects.filter(pk=pk).update(next_poll_at=due, lease_until=claims.lease_kept(due, timezone.now()))
        return Generation.objects.get(pk=pk)

    first = claims.take(job.pk, Status.SUBMITTED, now, now)
    monkeypatch.setattr(lifecycle, "advance", step)
    monkeypatch.setattr(claims, "take", lambda *args: claimed.append(args))
    hands = pump.Hands(0)
    with claims.pump_thread():
        hands._steps(job.pk, first)

    assert len(steps) == 2 and claimed == [], "the second poll ran with no claim in between"
    kept, known = steps[1]
    assert kept == known.lease_until and kept > first, "under the lease the first step's own write kept"
    left = Generation.objects.get(pk=job.pk)
    assert left.lease_until is None, "let go as the shift ended: the next pump takes it when it falls due"
    assert left.status == Status.SUBMITTED


@pytest.mark.django_db(transaction=True)
def test_a_job_that_ends_on_a_pump_thread_sends_the_next_queued_job_in_the_slot_it_gave_back(
    alice, official, held_tasks, monkeypatch
):
    """Against the simulator over HTTP: two videos on a backend with one slot, run on one pump thread. The first one's
    completing transaction moves the second to submitting (its timeline says so at the same instant), and the thread
    sends the second's create next. Each is made once at the provider and charged once; nothing goes through the
    task queue."""
    from django.utils import timezone

    from generations.billing.models import CostKind
    from generations.jobs import claims, lifecycle
    from generations.jobs.models import GenerationEvent
    from simulator.models import Job

    official.max_in_flight = 1
    official.save()
    first, second = (
        lifecycle.start(
            lifecycle.GenerationRequest(alice, prompt=prompt, model="sora-2", seconds=4, size="720x1280")
        ).generation
        for prompt in ("A paper boat", "A paper plane")
    )
    first.refresh_from_db()
    held_tasks.clear()  # what the two starts enqueued (the tests' sync mode): the pump's thread runs them here
    lease = claims.take(first.pk, Status.QUEUED, first.next_poll_at, timezone.now())
    counted, claimed = [], []
    count, claim = claims.in_flight, claims.take_next_queued
    monkeypatch.setattr(claims, "in_flight", lambda backend_id: counted.append(backend_id) or count(backend_id))
    monkeypatch.setattr(claims, "take_next_queued", lambda *args: claimed.append(claim(*args)) or claimed[-1])
    with claims.pump_thread():
        pump.Hands(0)._steps(first.pk, lease)

    for job in (first, second):
        job.refresh_from_db()
        assert job.status == Status.COMPLETED, job.error_message
        assert job.cost_entries.filter(kind=CostKind.CHARGE).count() == 1
        assert Job.objects.filter(sent_idempotency_key=job.idempotency_key).count() == 1
    # Only the first job's submit counted the backend's slots (under its lock); the second was not claimed after the
    # first one's commit: it took the slot the first gave back, in the same transaction.
    assert counted == [official.pk]
    assert [job for job, _ in claimed if job is not None] == []
    submitting = GenerationEvent.objects.get(generation=second, status=Status.SUBMITTING)
    assert first.completed_at <= submitting.at <= first.completed_at + timezone.timedelta(seconds=1)
    assert held_tasks == []
