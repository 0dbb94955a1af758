"""Two workers on the same job, a worker that dies halfway: nothing lost, nothing charged twice."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from generations.billing.models import CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.states import Status
from tests.conftest import drive

pytestmark = pytest.mark.django_db(transaction=True)


def wait_remote_done(generation, official):
    client = official.client()
    for _ in range(200):
        if client.retrieve(generation.remote_id).status == "completed":
            return
        threading.Event().wait(0.05)
    raise AssertionError("the simulator never finished")


def run_in_threads(target, count=2):
    barrier = threading.Barrier(count)
    errors = []

    def worker():
        try:
            barrier.wait()
            target()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_two_workers_advancing_the_same_job_at_once_charge_it_once(alice, official):
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Twins", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    generation.refresh_from_db()
    wait_remote_done(generation, official)
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())

    run_in_threads(lambda: lifecycle.advance(generation.pk))

    generation = drive(generation)
    assert generation.status == Status.COMPLETED
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1
    assert generation.charged() == Decimal("0.40")


def test_two_workers_polling_past_the_lease_still_charge_once(alice, official):
    """Even when both really poll (a slow worker's lease ran out), one wins the transition."""
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Twins again", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    generation.refresh_from_db()
    wait_remote_done(generation, official)

    run_in_threads(lambda: lifecycle.poll(Generation.objects.select_related("backend").get(pk=generation.pk)))

    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1
    assert generation.video.size > 0


def test_a_worker_that_dies_after_storing_the_video_is_finished_by_the_next(alice, official, monkeypatch, settings):
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Phoenix", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    generation.refresh_from_db()
    wait_remote_done(generation, official)
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())

    real_transition = Generation.transition

    def die_before_completing(self, old, new, **fields):
        if new == Status.COMPLETED:
            raise SystemExit("worker killed")  # not an Exception: nothing of ours catches it
        return real_transition(self, old, new, **fields)

    monkeypatch.setattr(Generation, "transition", die_before_completing)
    with pytest.raises(SystemExit):
        lifecycle.advance(generation.pk)
    monkeypatch.setattr(Generation, "transition", real_transition)

    generation.refresh_from_db()
    assert generation.status == Status.IN_PROGRESS or generation.status == Status.SUBMITTED
    assert generation.lease_until is not None  # the dead worker's lease is still held ...
    Generation.objects.filter(pk=generation.pk).update(lease_until=timezone.now())  # ... until it runs out

    generation = drive(generation)
    assert generation.status == Status.COMPLETED
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1


def test_a_worker_that_dies_while_submitting_never_sends_twice(alice, official, monkeypatch):
    calls = []
    from generations.providers.openai_videos.client import OpenAIVideosClient

    real_create = OpenAIVideosClient.create

    def create_then_die(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        real_create(self, **kwargs)
        raise SystemExit("worker killed after the provider accepted")

    monkeypatch.setattr(OpenAIVideosClient, "create", create_then_die)
    with pytest.raises(SystemExit):
        generation = lifecycle.start(
            GenerationRequest(alice, prompt="Once only", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
    monkeypatch.setattr(OpenAIVideosClient, "create", real_create)
    generation = Generation.objects.get(prompt="Once only")
    assert generation.status == Status.SUBMITTING
    Generation.objects.filter(pk=generation.pk).update(lease_until=timezone.now(), next_poll_at=timezone.now())

    generation = drive(generation)

    assert generation.status == Status.COMPLETED
    # The simulator honours Idempotency-Key: the re-sent create found the first job, not a new one.
    videos = official.client().http.json("GET", "videos", params={"limit": 100})["data"]
    assert [v["prompt"] for v in videos].count("Once only") == 1
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1


def test_without_idempotency_keys_a_lost_create_is_reconciled_not_resent(alice, official, monkeypatch):
    official.honours_idempotency_keys = False
    official.save()
    from generations.providers.openai_videos.client import OpenAIVideosClient

    real_create = OpenAIVideosClient.create
    sent = []

    def create_then_die(self, **kwargs):
        sent.append(1)
        real_create(self, **kwargs)
        raise SystemExit("worker killed")

    monkeypatch.setattr(OpenAIVideosClient, "create", create_then_die)
    with pytest.raises(SystemExit):
        lifecycle.start(
            GenerationRequest(
                alice, prompt="Reconcile me", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        )
    generation = Generation.objects.get(prompt="Reconcile me")
    Generation.objects.filter(pk=generation.pk).update(lease_until=timezone.now(), next_poll_at=timezone.now())

    generation = drive(generation)

    assert len(sent) == 1, "the create was never sent again"
    assert generation.status == Status.COMPLETED  # found in the provider's list and adopted
    assert generation.remote_id.startswith("video_")


def test_a_start_holds_the_sqlite_write_lock_only_for_its_writes(alice, official_offline, monkeypatch):
    """SQLite's write transaction holds the whole database (IMMEDIATE), and its busy wait is not first come, first
    served: a start that routed inside it kept every pump claim waiting while a burst of new jobs went in. So the
    route is read first, outside it; on PostgreSQL it is read in the job's own transaction (one snapshot)."""
    from generations.jobs import router

    seen = []
    choose = router.choose

    def watching(*args, **kwargs):
        seen.append(connection.in_atomic_block)
        return choose(*args, **kwargs)

    monkeypatch.setattr(router, "choose", watching)
    started = lifecycle.start(GenerationRequest(alice, prompt="Burst", model="sora-2", seconds=4, size="720x1280"))

    assert started.generation.status == Status.QUEUED
    assert seen == [connection.vendor != "sqlite"]
