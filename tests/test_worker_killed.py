"""A real `qcluster` killed with SIGKILL in the middle of a job, then started again, finishes it:
the video is stored once and charged once. Real processes, a real database file, real HTTP."""

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from generations import lifecycle
from generations.models import CostKind, Generation, Status

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def start(*command, env):
    return subprocess.Popen(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def database_url(db: dict) -> str:
    """The test database, as a URL the worker processes can open."""
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_env(settings):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECRET_KEY": settings.SECRET_KEY,
        "Q_SYNC": "0",
        "Q_WORKERS": "2",
        "GENERATION_LEASE_SECONDS": "3",
        "GENERATION_POLL_INTERVAL": "0.3",
        "PUMP_TICK_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
    }
    return env


def test_a_killed_worker_cluster_restarted_finishes_the_job_once(alice, official, held_tasks, settings, worker_env):
    settings.SIMULATOR_SPEED = 2  # a ~4.5 s job, so the kill lands while it runs
    generation = lifecycle.start(alice, prompt="Survives a kill -9", model="sora-2", seconds="4",
                                 size="720x1280", backend=official)
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())

    pump = start("pump", env=worker_env)
    cluster = start("qcluster", env=worker_env)
    try:
        def running():
            generation.refresh_from_db()
            return generation.status == Status.IN_PROGRESS

        wait_for(running, 30, "the worker to submit and start polling")
        kill(cluster)
        generation.refresh_from_db()
        assert generation.status == Status.IN_PROGRESS, "killed mid-job"

        cluster = start("qcluster", env=worker_env)
        wait_for(lambda: Generation.objects.get(pk=generation.pk).is_terminal, 60, "the restarted worker")
    finally:
        kill(cluster)
        kill(pump)

    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert Path(generation.video.path).stat().st_size > 0
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1
    assert generation.charged() == Decimal("0.40")
