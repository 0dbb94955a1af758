"""Shared fixtures: named users and backends pointing at the simulator over real HTTP."""

import os
from pathlib import Path

import pytest

from tests.factories import make_backend, make_dead_backend, make_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # PBKDF2 costs ~0.2 s per user created; tests need no strong hashes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def provider_sessions_closed():
    """Each test's kept-alive provider connections end with it: the live server holds a thread (and a database
    connection) for every connection left open."""
    yield
    from generations.providers import http

    http.close_sessions()


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def sim_openai_url(live_server):
    return f"{live_server.url}/simulator/openai/v1"


@pytest.fixture
def sim_task_url(live_server, settings):
    settings.SITE_URL = live_server.url  # the origin the simulator fetches character clips from
    return f"{live_server.url}/simulator/task/v1"


@pytest.fixture
def backend():
    """An official backend that is never called (nothing listens on the discard port)."""
    return make_dead_backend("Official", "openai_videos", api_key="secret-key")  # a key an export must not leak


@pytest.fixture
def official_offline():
    """The official backend where the pages under test never call it: on the discard port, priced."""
    return make_dead_backend("Official", "openai_videos")


@pytest.fixture
def aggregator_offline():
    """The aggregator where the pages under test never call it: on the discard port, priced, able to
    make a character from one of its own tasks."""
    return make_dead_backend("Aggregator", "task_api", tier="aggregator", supports_extract=True)


@pytest.fixture
def official(sim_openai_url, settings, live_server):
    """The official backend, simulated on the live server: jobs really run."""
    settings.SITE_URL = live_server.url
    return make_backend("Simulated official", "openai_videos", sim_openai_url)


@pytest.fixture
def aggregator(sim_task_url, settings, live_server):
    """The aggregator, simulated on the live server: jobs really run."""
    settings.SITE_URL = live_server.url
    return make_backend("Simulated aggregator", "task_api", sim_task_url)


def drive(generation, timeout=15.0):
    """Play the pump until the job ends, the way qcluster would (tasks run inline in tests)."""
    import time

    from generations.jobs import pump

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation.refresh_from_db()
        if generation.is_terminal:
            return generation
        pump.tick()
        time.sleep(0.05)
    generation.refresh_from_db()
    raise AssertionError(f"generation {generation.pk} still {generation.status} after {timeout} s")


@pytest.fixture
def s3_media(settings, monkeypatch):
    """Media in a bucket on a local S3 server started for this test (see tests/s3.py)."""
    from tests import s3

    yield from s3.start(settings, monkeypatch)


@pytest.fixture
def held_tasks(monkeypatch):
    """Hold back every task instead of running it: what was enqueued, as (func, args)."""
    from sora_studio import queue

    held = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args, **options: held.append((func, args)))
    return held


# --- Browser tests ------------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results" / "screenshots"


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium driven by Playwright; skipped with a clear line where it is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium); .ci/run installs it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shoot(request):
    """shoot(page, "name"): a full-page screenshot next to the test results, numbered in order."""
    folder = SCREENSHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    count = iter(range(1, 100))

    def take(page, name):
        page.screenshot(path=str(folder / f"{next(count):02d}-{name}.png"), full_page=True)

    return take


@pytest.fixture
def studio(live_server, settings, monkeypatch, official, aggregator):
    """The whole product as `make run` starts it: the live web server, a real qcluster on the test
    database, the simulated backends. Tasks go through the broker, not inline."""
    from django_q.conf import Conf

    from tests import workers

    settings.SIMULATOR_SPEED = 10  # jobs take about a second and a half
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)
    cluster = workers.start("qcluster", env=workers.worker_env(settings))
    try:
        yield live_server.url
    finally:
        workers.kill(cluster)
