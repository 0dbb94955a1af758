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


def test_a_chain_whose_worker_is_killed_mid_way_finishes_once_each_from_the_frame_before(
    alice, official, held_tasks, settings
):
    from django_q.models import Schedule

    from generations.storyboards import board, chain
    from tests.factories import make_series
    from tests.frames import CLOSE, difference, first_frame, last_frame

    settings.SIMULATOR_SPEED = 2  # ~4.5 s a take, so the kill lands in the middle of the chain
    # A task killed mid-run comes back after Q_RETRY (the ORM broker); a hook lost outright, by the schedule.
    env = workers.worker_env(settings, GENERATION_LEASE_SECONDS="3", Q_TIMEOUT="20", Q_RETRY="25")
    Schedule.objects.update_or_create(
        name="advance-chains",
        defaults={"func": "generations.tasks.advance_chains", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )
    series = make_series(alice, "Rex at sea", continuous=True, backend=official)
    for prompt in ("Sets sail", "Meets a whale", "Comes home"):
        board.add_scene(series, prompt)
    first, second, third = series.scenes.all()
    chain.generate_all(series)
    Generation.objects.filter(scene=first).update(next_poll_at=timezone.now())

    def takes(scene):
        return list(Generation.objects.filter(scene=scene).order_by("created_at"))

    pump = workers.start("pump", env=env)
    cluster = workers.start("qcluster", env=env)
    try:
        workers.wait_for(
            lambda: any(t.status == Status.IN_PROGRESS for t in takes(second)), 60, "the chain to reach scene 2"
        )
        workers.kill(cluster)
        cluster = workers.start("qcluster", env=env)
        workers.wait_for(
            lambda: [t.status for t in takes(third)] == [Status.COMPLETED], 180, "the restarted worker to end the chain"
        )
    finally:
        workers.kill(cluster)
        workers.kill(pump)

    made = [takes(scene) for scene in (first, second, third)]
    assert [len(one) for one in made] == [1, 1, 1], "one take per scene"
    assert all(one[0].status == Status.COMPLETED for one in made)
    for before, after in zip(made[:-1], made[1:], strict=True):
        with before[0].video.open("rb") as a, after[0].video.open("rb") as b:
            assert difference(first_frame(b.read()), last_frame(a.read())) < CLOSE
    assert [t[0].cost_entries.filter(kind=CostKind.CHARGE).count() for t in made] == [1, 1, 1]
