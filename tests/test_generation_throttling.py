"""Per-backend concurrency caps and a provider's 429: jobs wait their turn, none fail for it."""

import time

import pytest

from generations.jobs import lifecycle, pump
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.states import Status

pytestmark = pytest.mark.django_db(transaction=True)


def run_until_all_done(generations, timeout=30.0):
    peak = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        peak = max(peak, Generation.objects.in_flight().count())
        if not Generation.objects.filter(pk__in=[g.pk for g in generations]).active().exists():
            return peak
        pump.tick()
        time.sleep(0.02)
    raise AssertionError("jobs still running")


def test_a_backend_never_has_more_jobs_in_flight_than_its_cap(alice, official, held_tasks):
    official.max_in_flight = 1
    official.save()
    generations = [
        lifecycle.start(
            GenerationRequest(alice, prompt=f"Job {i}", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
        for i in range(3)
    ]
    held_tasks.clear()
    from django_q.tasks import async_task

    from sora_studio import queue

    queue.async_task = async_task  # from here on the pump hands jobs to (inline) workers

    peak = run_until_all_done(generations)

    assert peak == 1
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.COMPLETED}


def test_a_provider_429_pauses_the_backend_and_every_job_still_completes(alice, official, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1  # the provider's own cap is lower than ours (4)
    # Each job lasts 1 s (at the suite's usual speed, 0.18 s): long enough that the next create meets
    # the first job still running, and so a 429, even when a busy machine starts the three slowly.
    settings.SIMULATOR_SPEED = 9
    generations = [
        lifecycle.start(
            GenerationRequest(alice, prompt=f"Busy {i}", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
        for i in range(3)
    ]

    run_until_all_done(generations)

    done = Generation.objects.filter(pk__in=[g.pk for g in generations])
    assert set(done.values_list("status", flat=True)) == {Status.COMPLETED}
    assert set(done.values_list("attempts", flat=True)) == {0}, "a 429 is not a failed attempt"
    official.refresh_from_db()
    assert official.paused_until is not None
