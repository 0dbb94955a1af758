"""Completion callbacks: asked for where the provider can reach the studio, verified the provider's way,
answered by polling the job at once; polling goes on, slower, for a callback that never comes."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.providers import webhooks
from generations.providers.fal_queue import webhooks as fal_webhooks
from generations.providers.models import Price
from generations.providers.replicate import webhooks as replicate_webhooks
from generations.states import Status
from generations.webhooks.models import WebhookDelivery
from simulator import callbacks
from simulator.models import Job, owner_for
from tests.conftest import drive
from tests.factories import SIM_KEY, make_backend, make_dead_backend

pytestmark = pytest.mark.django_db(transaction=True)

OWNER = owner_for(SIM_KEY)  # who the simulator says the callbacks are for
REPLICATE_MODEL = "kwaivgi/kling-v1.6-standard"
FAL_MODEL = "fal-ai/kling-video/v2.1/master/text-to-video"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()  # cached signing keys, and when they were last fetched again
    yield
    cache.clear()


@pytest.fixture
def studio(live_server, settings):
    """The studio on the live server, reachable by the simulator, which it asks for callbacks."""
    settings.SITE_URL = live_server.url
    settings.WEBHOOKS_ENABLED = "on"
    return live_server.url


def priced(backend):
    Price.objects.create(backend=backend, unit="per_second", amount=Decimal("0.10"))
    return backend


@pytest.fixture
def replicate_backend(studio):
    return priced(make_backend("Simulated Replicate", "replicate", f"{studio}/simulator/replicate/v1"))


@pytest.fixture
def fal_backend(studio):
    return make_backend("Simulated fal", "fal_queue", f"{studio}/simulator/fal")


def start(owner, backend, prompt="A lighthouse at dusk"):
    model, size = (REPLICATE_MODEL, "1280x720") if backend.protocol == "replicate" else (FAL_MODEL, "1920x1080")
    request = GenerationRequest(owner, prompt=prompt, model=model, seconds=5, size=size, backend=backend)
    return lifecycle.start(request).generation


def wait_without_polling(generation, timeout):
    """Wait for the job to end with no pump running: only a callback can make it be polled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation.refresh_from_db()
        if generation.is_terminal:
            return generation
        time.sleep(0.05)
    return generation


# --- End to end: the simulator calls back, the studio polls at once -------------------------------------------


@pytest.mark.parametrize("protocol", ["replicate", "fal_queue"])
def test_a_job_completes_on_its_callback_long_before_its_next_poll(protocol, alice, settings, request):
    backend = request.getfixturevalue("replicate_backend" if protocol == "replicate" else "fal_backend")
    settings.SIMULATOR_SPEED = 10  # the job takes about a second
    settings.GENERATION_POLL_INTERVAL = 2
    settings.WEBHOOK_POLL_FACTOR = 5  # so the first poll is 10 s after the provider accepted it

    generation = start(alice, backend)  # tasks run inline: submitted and accepted by now
    generation.refresh_from_db()
    assert generation.status == Status.SUBMITTED and generation.webhook
    slow_poll_due = generation.next_poll_at
    assert slow_poll_due - generation.submitted_at >= timedelta(seconds=9.9)
    assert Job.objects.get().webhook == f"{settings.SITE_URL}/webhooks/{backend.pk}/"

    done = wait_without_polling(generation, timeout=8)
    assert done.status == Status.COMPLETED, done.error_message
    assert done.completed_at < slow_poll_due  # completed before the slow poll was even due
    assert done.video.name.endswith(".mp4")
    assert WebhookDelivery.objects.filter(backend=backend).count() == 1


@pytest.mark.parametrize("protocol", ["replicate", "fal_queue"])
def test_webhooks_are_not_asked_for_when_the_site_is_on_loopback(protocol, alice, settings, request):
    backend = request.getfixturevalue("replicate_backend" if protocol == "replicate" else "fal_backend")
    settings.WEBHOOKS_ENABLED = "auto"  # and SITE_URL is the live server, on 127.0.0.1
    generation = drive(start(alice, backend))
    assert generation.status == Status.COMPLETED and not generation.webhook
    job = Job.objects.get()
    assert job.webhook == "" and "webhook" not in job.request.get("input", {})


def test_a_public_site_url_asks_for_callbacks_and_a_private_one_does_not(settings, replicate_backend):
    settings.WEBHOOKS_ENABLED = "auto"
    for url, public in [
        ("https://93.184.215.14", True),
        ("https://[2606:4700::1111]:8443", True),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://10.1.2.3", False),
        ("http://192.168.1.20:8000", False),
        ("http://studio.local", False),
        ("http://studio", False),
        ("not a url", False),
    ]:
        settings.SITE_URL = url
        assert webhooks.enabled() is public, url
        assert bool(webhooks.callback_url(replicate_backend)) is public, url
    settings.SITE_URL = "https://93.184.215.14"
    assert webhooks.callback_url(replicate_backend) == f"https://93.184.215.14/webhooks/{replicate_backend.pk}/"
    settings.WEBHOOKS_ENABLED = "off"
    assert webhooks.callback_url(replicate_backend) == ""
    # A protocol without callbacks is never given a URL.
    settings.WEBHOOKS_ENABLED = "on"
    assert webhooks.callback_url(make_dead_backend("Official", "openai_videos")) == ""


def test_a_create_to_a_public_site_carries_the_callback_the_providers_way(settings, replicate_backend, fal_backend):
    settings.WEBHOOKS_ENABLED = "auto"
    settings.SITE_URL = "https://93.184.215.14"  # public: the simulator takes it, and calls back no one
    job = replicate_backend.client().create(
        prompt="A kite", model=REPLICATE_MODEL, seconds=5, size="1280x720", characters=[], idempotency_key="k"
    )
    assert job.webhook
    sent = Job.objects.get(pk=job.id)
    assert sent.webhook == f"https://93.184.215.14/webhooks/{replicate_backend.pk}/"
    job = fal_backend.client().create(
        prompt="A kite", model=FAL_MODEL, seconds=5, size="1920x1080", characters=[], idempotency_key="k"
    )
    assert job.webhook and Job.objects.get(pk=job.id.rsplit("/", 1)[1]).webhook.endswith(f"/{fal_backend.pk}/")


# --- What a callback may and may not do --------------------------------------------------------------------


@pytest.fixture
def running(alice, settings, held_tasks, request):
    """A job at the provider, asked to call back, whose callbacks the test sends itself (the simulator
    calls back no one here), with every task held back: what a callback enqueues is visible."""

    def make(backend):
        settings.SIMULATOR_FETCH_ORIGINS = ["http://127.0.0.1:9"]
        settings.SIMULATOR_SPEED = 1
        generation = start(alice, backend, prompt="A lighthouse #slow")
        lifecycle.advance(generation.pk)  # submit (held tasks do not run)
        held_tasks.clear()
        generation.refresh_from_db()
        assert generation.status == Status.SUBMITTED and generation.webhook
        return generation

    return make


def post(backend, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    from django.conf import settings

    return requests.post(f"{settings.SITE_URL}/webhooks/{backend.pk}/", data=body, headers=headers or {}, timeout=10)


def replicate_callback(generation, *, delivery="msg_1", at=None, body=None) -> tuple[bytes, dict[str, str]]:
    body = body or json.dumps({"id": generation.remote_id, "status": "succeeded"}).encode()
    return body, callbacks.replicate_headers(OWNER, delivery, body, at=at)


def fal_callback(generation, *, at=None, body=None) -> tuple[bytes, dict[str, str]]:
    request_id = generation.remote_id.rsplit("/", 1)[1]
    body = body or json.dumps({"request_id": request_id, "status": "OK", "payload": {}}).encode()
    return body, callbacks.fal_headers(request_id, OWNER, body, at=at)


def unchanged(generation, held_tasks) -> bool:
    before = generation.next_poll_at
    generation.refresh_from_db()
    return generation.next_poll_at == before and generation.status == Status.SUBMITTED and held_tasks == []


@pytest.mark.parametrize("protocol", ["replicate", "fal_queue"])
def test_a_valid_callback_makes_the_job_due_and_hands_it_to_a_worker(protocol, running, held_tasks, request):
    backend = request.getfixturevalue("replicate_backend" if protocol == "replicate" else "fal_backend")
    generation = running(backend)
    body, headers = (replicate_callback if protocol == "replicate" else fal_callback)(generation)
    answer = post(backend, body, headers)
    assert answer.status_code == 200, answer.text
    generation.refresh_from_db()
    assert generation.next_poll_at <= timezone.now()
    assert ("generations.tasks.advance", (generation.pk,)) in held_tasks


@pytest.mark.parametrize("protocol", ["replicate", "fal_queue"])
def test_forged_tampered_old_or_replayed_callbacks_are_refused_and_change_nothing(
    protocol, running, held_tasks, request
):
    backend = request.getfixturevalue("replicate_backend" if protocol == "replicate" else "fal_backend")
    generation = running(backend)
    sign = replicate_callback if protocol == "replicate" else fal_callback
    body, headers = sign(generation)

    # Signed with a key that is not the provider's.
    forged = dict(headers)
    if protocol == "replicate":
        forged["webhook-signature"] = "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ=="
    else:
        forged["X-Fal-Webhook-Signature"] = Ed25519PrivateKey.generate().sign(b"anything").hex()
    tampered = body.replace(b"}", b', "extra": 1}', 1)
    old_body, old_headers = sign(generation, at=time.time() - 600)
    for bad_body, bad_headers in [
        (body, forged),
        (tampered, headers),  # the signature was for the body before
        (old_body, old_headers),  # signed properly, ten minutes ago
        (body, {}),  # no signature at all
    ]:
        answer = post(backend, bad_body, bad_headers)
        assert answer.status_code == 400, answer.text
        assert unchanged(generation, held_tasks)
    assert not WebhookDelivery.objects.exists()

    assert post(backend, body, headers).status_code == 200
    assert len([t for t in held_tasks if t[0] == "generations.tasks.advance"]) == 1
    held_tasks.clear()
    generation.refresh_from_db()
    replay = post(backend, body, headers)
    assert replay.status_code == 400 and "before" in replay.text
    assert unchanged(generation, held_tasks)


def test_a_valid_callback_about_an_unknown_job_is_acknowledged_and_ignored(replicate_backend, running, held_tasks):
    running(replicate_backend)
    body = json.dumps({"id": "pred_nobody_knows", "status": "succeeded"}).encode()
    answer = post(replicate_backend, body, callbacks.replicate_headers(OWNER, "msg_2", body))
    assert answer.status_code == 200 and "ignored" in answer.text
    assert held_tasks == []


def test_an_unknown_backend_or_one_without_callbacks_is_404(studio, replicate_backend):
    body, headers = b"{}", callbacks.replicate_headers(OWNER, "msg_3", b"{}")
    official = make_dead_backend("Official", "openai_videos")
    for path in ["999999", str(official.pk), "99999999999999999999999"]:
        answer = requests.post(f"{studio}/webhooks/{path}/", data=body, headers=headers, timeout=10)
        assert answer.status_code == 404, path


def test_garbage_never_makes_a_500(studio, replicate_backend, fal_backend):
    for backend in (replicate_backend, fal_backend):
        url = f"{studio}/webhooks/{backend.pk}/"
        cases = [
            {"data": b""},
            {"data": b"\xff\xfe\x00garbage"},
            {"data": b"[1, 2", "headers": {"Content-Type": "application/json"}},
            {"data": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
            {"data": b"a=1&b=2", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            {"data": b"{}", "headers": {"webhook-id": "x" * 5000, "webhook-timestamp": "1e400"}},
            {"data": b"{}", "headers": {"webhook-id": "a", "webhook-timestamp": "nan", "webhook-signature": "v1"}},
            {
                "data": b"\xff{}",
                "headers": {"webhook-id": "a", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,!"},
            },
            {
                "data": b"{}",
                "headers": {
                    "X-Fal-Webhook-Request-Id": "req_1",
                    "X-Fal-Webhook-User-Id": "u",
                    "X-Fal-Webhook-Timestamp": str(int(time.time())),
                    "X-Fal-Webhook-Signature": "zz",
                },
            },
            {
                "data": b"{}",
                "headers": {
                    "X-Fal-Webhook-Request-Id": "../../etc",
                    "X-Fal-Webhook-User-Id": "u",
                    "X-Fal-Webhook-Timestamp": "-1",
                    "X-Fal-Webhook-Signature": "00" * 64,
                },
            },
        ]
        for case in cases:
            answer = requests.post(url, timeout=10, **case)
            assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text)
        assert requests.get(url, timeout=10).status_code == 405
        too_big = requests.post(url, data=b"x" * (1024 * 1024 + 1), timeout=10)
        assert too_big.status_code == 413


HEADER_NAMES = [
    "HTTP_WEBHOOK_ID",
    "HTTP_WEBHOOK_TIMESTAMP",
    "HTTP_WEBHOOK_SIGNATURE",
    "HTTP_X_FAL_WEBHOOK_REQUEST_ID",
    "HTTP_X_FAL_WEBHOOK_USER_ID",
    "HTTP_X_FAL_WEBHOOK_TIMESTAMP",
    "HTTP_X_FAL_WEBHOOK_SIGNATURE",
]
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
    st.sampled_from(["v1,", "v1,AAAA", "0" * 128, str(int(time.time())), "-9" * 30, "inf", "v1,a b,c"]),
)


def test_random_bodies_and_signature_headers_are_answered_with_a_4xx(client, replicate_backend, fal_backend):
    @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        backend=st.sampled_from([replicate_backend, fal_backend]),
        body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
        headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values),
    )
    def check(backend, body, headers):
        answer = client.post(f"/webhooks/{backend.pk}/", body, content_type="application/json", **headers)
        assert 400 <= answer.status_code < 500, (body, headers, answer.content)

    check()


# --- Keys: fetched once, fetched again on a rotation ---------------------------------------------------------


def counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_fal_keys_are_fetched_once_for_many_callbacks_and_again_after_a_rotation(
    fal_backend, running, held_tasks, settings, monkeypatch
):
    generation = running(fal_backend)
    fetches = counting(monkeypatch, fal_webhooks, "fetch_keys")
    now = int(time.time())
    for moment in range(5):  # five deliveries (fal signs each retry with its own timestamp)
        body, headers = fal_callback(generation, at=now - moment)
        assert post(fal_backend, body, headers).status_code == 200
    assert len(fetches) == 1

    settings.SIMULATOR_WEBHOOK_KEY_VERSION = 2  # the provider rotates its key
    body, headers = fal_callback(generation, at=now - 10)
    assert post(fal_backend, body, headers).status_code == 200
    assert len(fetches) == 2

    # A forged signature does not make the studio fetch again and again.
    for moment in range(3):
        body, headers = fal_callback(generation, at=now - 20 - moment)
        headers["X-Fal-Webhook-Signature"] = Ed25519PrivateKey.generate().sign(body).hex()
        assert post(fal_backend, body, headers).status_code == 400
    assert len(fetches) == 2


def test_the_replicate_secret_is_fetched_once_for_many_callbacks(replicate_backend, running, monkeypatch):
    generation = running(replicate_backend)
    fetches = counting(monkeypatch, replicate_webhooks, "_fetch_secret")
    for number in range(5):
        body, headers = replicate_callback(generation, delivery=f"msg_{number}")
        assert post(replicate_backend, body, headers).status_code == 200
    assert len(fetches) == 1
