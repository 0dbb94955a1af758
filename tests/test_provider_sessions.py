"""Provider sessions: one kept-alive session per backend and thread, reused by the next step, and not kept forever."""

import threading

import pytest

from generations.providers import http
from tests.factories import make_dead_backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed(monkeypatch):
    """The sessions closed meanwhile."""
    seen = []
    real_close = http.requests.Session.close

    def close(session):
        seen.append(session)
        real_close(session)

    monkeypatch.setattr(http.requests.Session, "close", close)
    return seen


def test_a_backend_s_steps_share_one_session_and_a_changed_key_gets_a_new_one(closed):
    backend = make_dead_backend(api_key="first")
    first = http.HTTPClient(backend).session

    assert http.HTTPClient(backend).session is first
    backend.api_key = "second"
    assert http.HTTPClient(backend).session is not first
    assert closed == [first], "the old session was closed"


def test_a_thread_keeps_a_few_sessions_and_drops_idle_ones(monkeypatch, closed):
    backends = [make_dead_backend(f"Backend {n}") for n in range(http.KEPT_SESSIONS + 2)]
    sessions = [http.HTTPClient(backend).session for backend in backends]

    assert len(http._threads.sessions) == http.KEPT_SESSIONS
    assert closed == sessions[:2], "the least recently used were closed"
    now = http.time.monotonic()
    monkeypatch.setattr(http.time, "monotonic", lambda: now + http.IDLE_SECONDS + 1)
    http.HTTPClient(backends[-1])
    assert len(http._threads.sessions) == 1, "the idle ones were closed"


def test_sessions_are_per_thread():
    backend = make_dead_backend()
    here = http.HTTPClient(backend).session
    there = []
    thread = threading.Thread(target=lambda: there.append(http.HTTPClient(backend).session))
    thread.start()
    thread.join()
    assert there[0] is not here
