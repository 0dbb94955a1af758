"""A real `qcluster` killed with SIGKILL in the middle of a job, then started again, finishes it:
the video is stored once and charged once. Real processes, a real database file, real HTTP."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from generations.billing.models import CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.states import Status
from tests import workers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(settings):
    return workers.worker_env(settings, GENERATION_LEASE_SECONDS="3")


def test_a_killed_worker_cluster_restarted_finishes_the_job_once(alice, official, held_tasks, settings, env):
    settings.SIMULATOR_SPEED = 2  # a ~4.5 s job, so the kill lands while it runs
    generation = lifecycle.start(
        GenerationRequest(
            alice, prompt="Survives a kill -9", model="sora-2", seconds=4, size="720x1280", backend=official
        )
    ).generation
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())

    pump = workers.start("pump", env=env)
    cluster = workers.start("qcluster", env=env)
    try:

        def running():
            generation.refresh_from_db()
            return generation.status == Status.IN_PROGRESS

        workers.wait_for(running, 30, "the worker to submit and start polling")
        workers.kill(cluster)
        generation.refresh_from_db()
        assert generation.status == Status.IN_PROGRESS, "killed mid-job"

        cluster = workers.start("qcluster", env=env)
        workers.wait_for(lambda: Generation.objects.get(pk=generation.pk).is_terminal, 60, "the restarted worker")
    finally:
        workers.kill(cluster)
        workers.kill(pump)

    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert Path(generation.video.path).stat().st_size > 0
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1
    assert generation.charged() == Decimal("0.40")
