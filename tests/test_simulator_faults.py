"""The simulator's fault mode and its books, over real HTTP: each fault breaks the exchange the way it says
(before or after the call is served), the studio's clients read each one as the failure it is, and the books
count creates, repeated creates and what each provider billed."""

from __future__ import annotations

import io
import time
from collections import Counter
from decimal import Decimal

import pytest
import requests

from generations.providers.base import ProviderError
from simulator import books, faults
from simulator.faults import MALFORMED, RATE_LIMITED, RESET, SERVER_ERROR, TIMEOUT, Plan
from simulator.models import Fault
from tests import workers
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = {"Authorization": f"Bearer {SIM_KEY}"}


@pytest.fixture
def fault(monkeypatch):
    """fault(kind, moment): every call to the simulator meets this fault (the dice are bypassed)."""

    def choose(kind, moment):
        monkeypatch.setattr(faults, "plan", lambda: Plan(kind, moment))

    return choose


def create(client, prompt="A kite over the dunes", key="key-1"):
    return client.create(prompt=prompt, model="sora-2", seconds=4, size="720x1280", characters=[], idempotency_key=key)


def jobs():
    return books.read()["jobs"]


def test_a_reset_before_a_create_breaks_the_connection_and_creates_nothing(official, fault):
    fault(RESET, Fault.BEFORE)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{official.base_url}/videos", json={"prompt": "Nothing made"}, headers=AUTH, timeout=5).json()

    with pytest.raises(ProviderError) as caught:
        create(official.client())
    assert caught.value.code == "connection_error" and caught.value.maybe_sent  # the studio cannot tell
    assert jobs() == []
    assert books.read()["faults"]["on_creates"] == {"reset before": 2}


def test_a_reset_after_a_create_cuts_the_answer_short_and_the_job_exists(official, fault):
    fault(RESET, Fault.AFTER)
    response = requests.post(
        f"{official.base_url}/videos", json={"prompt": "Made, answer lost"}, headers=AUTH, timeout=5, stream=True
    )
    assert response.status_code == 200  # the headers arrived ...
    assert int(response.headers["Content-Length"]) > 0
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # ... half the body did not
        b"".join(response.iter_content(1024))

    with pytest.raises(ProviderError) as caught:
        create(official.client(), prompt="Made again, answer lost")
    assert caught.value.maybe_sent and caught.value.transient
    assert sorted(job["prompt"] for job in jobs()) == ["Made again, answer lost", "Made, answer lost"]


def test_a_reset_after_a_download_cuts_the_file_short(official, fault, settings):
    client = official.client()
    job = create(client)
    time.sleep(0.5)  # done at SIMULATOR_SPEED 50
    fault(RESET, Fault.AFTER)
    response = requests.get(f"{official.base_url}/videos/{job.id}/content", headers=AUTH, timeout=5, stream=True)
    assert response.headers["Content-Type"] == "video/mp4"
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        b"".join(response.iter_content(1024))


def test_a_download_cut_short_is_a_transient_provider_error(official, fault):
    client = official.client()
    job = create(client)
    time.sleep(0.5)
    job = client.retrieve(job.id)
    fault(RESET, Fault.AFTER)
    with pytest.raises(ProviderError) as caught:
        client.download(job, "video", io.BytesIO())
    assert caught.value.transient


def test_a_timeout_is_served_then_answered_too_late(official, fault, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    settings.SIMULATOR_FAULT_DELAY = 1.5
    fault(TIMEOUT, Fault.AFTER)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        create(official.client())
    assert caught.value.code == "read_timeout" and caught.value.maybe_sent
    assert time.monotonic() - started < 1.4
    assert [job["prompt"] for job in jobs()] == ["A kite over the dunes"]  # accepted, and billed once it completes


def test_a_malformed_answer_is_200_with_half_a_body(official, fault):
    fault(MALFORMED, Fault.AFTER)
    response = requests.post(f"{official.base_url}/videos", json={"prompt": "Half"}, headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert response.text.startswith('{"id": "video_')
    with pytest.raises(ValueError):
        response.json()

    with pytest.raises(ProviderError) as caught:
        create(official.client())
    assert caught.value.code == "invalid_response" and caught.value.maybe_sent
    assert len(jobs()) == 2


def test_server_errors_and_rate_limits_come_before_anything_is_made(official, fault):
    fault(SERVER_ERROR, Fault.BEFORE)
    with pytest.raises(ProviderError) as caught:
        create(official.client())
    assert caught.value.status == 500 and caught.value.transient and not caught.value.maybe_sent

    fault(RATE_LIMITED, Fault.BEFORE)
    with pytest.raises(ProviderError) as caught:
        create(official.client())
    assert caught.value.rate_limited and caught.value.retry_after == 1
    assert jobs() == []


def test_the_dice_fail_the_share_asked_for_with_every_kind_and_a_seed_repeats_them(settings):
    settings.SIMULATOR_FAULT_RATE = 0.2
    settings.SIMULATOR_FAULT_SEED = "fault-suite"
    first = [faults.plan() for _ in range(5000)]
    settings.SIMULATOR_FAULT_SEED = "another"
    faults.plan()
    settings.SIMULATOR_FAULT_SEED = "fault-suite"
    assert [faults.plan() for _ in range(5000)] == first

    drawn = [plan for plan in first if plan]
    assert 0.17 < len(drawn) / len(first) < 0.23
    seen = Counter((plan.kind, plan.moment) for plan in drawn)
    assert set(seen) == {
        (SERVER_ERROR, Fault.BEFORE),
        (RATE_LIMITED, Fault.BEFORE),
        (TIMEOUT, Fault.AFTER),
        (MALFORMED, Fault.AFTER),
        (RESET, Fault.BEFORE),
        (RESET, Fault.AFTER),
    }

    settings.SIMULATOR_FAULT_RATE = 0
    assert not any(faults.plan() for _ in range(1000))


def test_the_books_count_creates_per_key_and_bill_as_each_provider_does(official, aggregator, settings):
    settings.SIMULATOR_IDEMPOTENCY_KEYS = ["openai"]  # this aggregator ignores keys, as many do
    openai, task = official.client(), aggregator.client()
    first = create(openai, key="k-openai")
    again = create(openai, key="k-openai")  # deduplicated: not a new create
    assert again.id == first.id
    for prompt in ("A task", "A task"):  # the same key twice: two videos on a provider without keys
        task.create(prompt=prompt, model="sora-2", seconds=10, size="720x1280", characters=[], idempotency_key="k-t")
    task.create(prompt="A task #fail", model="sora-2", seconds=10, size="720x1280", characters=[], idempotency_key="")
    time.sleep(0.6)  # every job has ended at SIMULATOR_SPEED 50

    read = books.read()
    assert read["creates"] == {"openai": 1, "task": 3}
    assert read["repeated_creates"] == {"openai": 1, "task": 0}
    assert read["duplicates"]["idempotency_key"] == [{"protocol": "task", "idempotency_key": "k-t", "jobs": 2}]
    assert read["duplicates"]["prompt"] == [{"protocol": "task", "prompt": "A task", "jobs": 2}]
    # OpenAI: $0.10 a second delivered; the aggregator $0.12 a video, nothing for the one that failed.
    assert read["billed"] == {"openai": "0.40", "task": "0.24", "total": "0.64"}
    assert {job["prompt"]: Decimal(job["billed"]) for job in read["jobs"]}["A task #fail"] == 0


def test_the_books_answer_only_a_simulator_key_and_show_its_own_jobs(official, live_server):
    create(official.client())
    url = f"{live_server.url}/simulator/books"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer not-a-key"}, timeout=5).status_code == 401
    answer = requests.get(url, headers=AUTH, timeout=5).json()
    assert [job["prompt"] for job in answer["jobs"]] == ["A kite over the dunes"]
    assert answer["faults"]["total"] == 0


def test_under_runserver_a_reset_breaks_the_exchange_too(settings, tmp_path):
    """The development server `make run` starts (runserver) exposes the socket the same way as live_server."""
    port = 18765 + (hash(tmp_path) % 1000)
    env = workers.worker_env(settings, SIMULATOR_FAULT_RATE="1", SIMULATOR_FAULT_KINDS="reset", SIMULATOR_ENABLED="1")
    web = workers.start("runserver", f"127.0.0.1:{port}", "--noreload", env=env)
    url = f"http://127.0.0.1:{port}/simulator/openai/v1/videos"
    try:

        def up():
            try:
                requests.get(f"http://127.0.0.1:{port}/login/", timeout=1)
                return True
            except requests.ConnectionError:
                return False

        workers.wait_for(up, 30, "runserver to listen")
        broken = Counter()
        for _ in range(8):
            try:
                requests.post(url, json={"prompt": f"Broken {_}"}, headers=AUTH, timeout=5).json()
            except requests.exceptions.ChunkedEncodingError:
                broken["cut short"] += 1
            except requests.ConnectionError:
                broken["no answer"] += 1
        assert sum(broken.values()) == 8, broken
    finally:
        workers.kill(web)
    kinds = Counter(Fault.objects.values_list("moment", flat=True))
    assert kinds["before"] == broken["no answer"] and kinds["after"] == broken["cut short"]
