"""Shared fixtures: named users and backends pointing at the simulator over real HTTP."""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SIM_KEY = "sim-local-key"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # PBKDF2 costs ~0.2 s per user created; tests need no strong hashes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def sim_openai_url(live_server):
    return f"{live_server.url}/simulator/openai/v1"


@pytest.fixture
def sim_task_url(live_server):
    return f"{live_server.url}/simulator/task/v1"


def make_backend(name, protocol, base_url, **extra):
    from generations.models import DEFAULT_CAPABILITIES, Backend

    caps = DEFAULT_CAPABILITIES[protocol]
    fields = {
        "supports_characters": caps["characters"], "supports_extract": caps["extract"],
        "supports_remix": caps["remix"], "honours_idempotency_keys": True, "max_in_flight": 4,
        "tier": "official" if protocol == "openai_videos" else "aggregator",
    }
    fields.update(extra)
    backend = Backend.objects.create(name=name, protocol=protocol, base_url=base_url, api_key=SIM_KEY, **fields)
    backend.install_default_prices()
    return backend


@pytest.fixture
def official(sim_openai_url, settings, live_server):
    settings.SITE_URL = live_server.url
    return make_backend("Simulated official", "openai_videos", sim_openai_url)


@pytest.fixture
def aggregator(sim_task_url, settings, live_server):
    settings.SITE_URL = live_server.url
    return make_backend("Simulated aggregator", "task_api", sim_task_url)


def drive(generation, timeout=15.0):
    """Play the pump until the job ends, the way qcluster would (tasks run inline in tests)."""
    import time

    from generations import pump

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
def held_tasks(monkeypatch):
    """Hold back every task instead of running it: what was enqueued, as (func, args)."""
    from generations import queue

    held = []
    monkeypatch.setattr(queue, "async_task", lambda func, *args: held.append((func, args)))
    return held
