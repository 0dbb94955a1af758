"""The runway client against the simulator over real HTTP, and the studio's pipeline on a Runway backend."""

import hashlib
import io
import json
import time
from decimal import Decimal
from io import StringIO
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.core.management import call_command
from PIL import Image

from generations.providers.base import (
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    LostCreate,
    ProviderError,
    ReferenceImage,
    RemoteJob,
)
from generations.providers.runway.client import parse_task, ratio_of
from simulator.models import Job
from tests.factories import SIM_KEY, make_backend

pytestmark = pytest.mark.django_db(transaction=True)

A = {"model": "gen4.5", "seconds": "5", "size": "1280x720", "characters": [], "idempotency_key": "k"}


@pytest.fixture
def sim_runway_url(live_server):
    return f"{live_server.url}/simulator/runway/v1"


@pytest.fixture
def runway(sim_runway_url):
    # Runway takes no idempotency key: a lost create must never be re-sent.
    return make_backend("Simulated Runway", "runway", sim_runway_url, honours_idempotency_keys=False)


def finish(client, job):
    for _ in range(300):
        job = client.retrieve(job.id)
        if job.status in (COMPLETED, FAILED):
            return job
        time.sleep(0.02)
    raise AssertionError("never finished")


def a_still(colour=(200, 40, 90)) -> ReferenceImage:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(buffer, "PNG")
    return ReferenceImage("mossy-1.png", buffer.getvalue(), "image/png")


def test_it_creates_polls_and_downloads_a_video(runway):
    client = runway.client()
    job = client.create(prompt="A red kite", **A)
    assert job.id.startswith("task_") and job.status == QUEUED

    done = finish(client, job)
    assert done.status == COMPLETED and done.progress == 100
    video = io.BytesIO()
    assert client.download(done, "video", video) > 0
    assert video.getvalue()[4:8] == b"ftyp"
    sent = Job.objects.get(pk=job.id)
    assert sent.request == {"model": "gen4.5", "ratio": "1280:720", "duration": 5}
    assert sent.images == []


def test_seconds_may_arrive_as_an_int_and_sizes_become_ratios(runway):
    job = runway.client().create(prompt="A heron", **{**A, "seconds": 10, "size": "720x1280"})
    sent = Job.objects.get(pk=job.id)
    assert (sent.seconds, sent.size, sent.request["ratio"]) == (10, "720x1280", "720:1280")
    assert ratio_of("1920x1080") == "1920:1080"


def test_a_characters_still_is_sent_as_the_first_frame(runway):
    still = a_still()
    job = runway.client().create(prompt="Mossy waves", **A, images=[still, a_still((0, 0, 0))])
    sent = Job.objects.get(pk=job.id)
    # One image travels (gen4.5 takes a first frame only), as a data URI the simulator read as a PNG.
    assert sent.images == [f"sha256-{hashlib.sha256(still.content).hexdigest()[:16]}.png"]
    assert sent.request["promptImage"] == sent.images[0]
    assert finish(runway.client(), job).status == COMPLETED


def test_runway_has_no_thumbnail_remix_characters_or_task_list(runway):
    client = runway.client()
    with pytest.raises(ProviderError) as thumbnail:
        client.download(
            RemoteJob(id="task_1", status=COMPLETED, video_url="https://cdn/x.mp4"), "thumbnail", io.BytesIO()
        )
    assert not thumbnail.value.transient  # the pipeline's "no thumbnail"
    for call in (
        lambda: client.remix("task_1", "again", "k"),
        lambda: client.create_character(name="M", description="", clip=None, clip_url="https://x"),
        lambda: client.extract_character("task_1", "M"),
    ):
        with pytest.raises(ProviderError) as unsupported:
            call()
        assert unsupported.value.code == "unsupported"
    assert client.find_recent(LostCreate("A red kite", "m", 5, "1280x720", 0, 2e9)) == []


def test_delete_cancels_the_task_and_deleting_twice_is_fine(runway):
    client = runway.client()
    job = client.create(prompt="A kite #slow", **A)
    client.delete(job.id)
    assert not Job.objects.filter(pk=job.id).exists()
    client.delete(job.id)  # already gone: 404 is what we wanted


@pytest.mark.parametrize(
    "status, expected",
    [
        ("PENDING", QUEUED),
        ("THROTTLED", QUEUED),
        ("RUNNING", RUNNING),
        ("FAILED", FAILED),
        ("CANCELLED", FAILED),
    ],
)
def test_runway_statuses_are_normalised(status, expected):
    job = parse_task({"id": "task_1", "status": status, "progress": 0.42, "failure": "Boom", "failureCode": "X"})
    assert job.status == expected
    if status == "RUNNING":
        assert job.progress == 42


def test_a_success_without_output_or_an_unknown_status_is_a_bad_answer():
    for data in (
        {"id": "task_1", "status": "SUCCEEDED", "output": []},
        {"id": "task_1", "status": "DONE"},
        {"status": "PENDING"},
    ):
        with pytest.raises(ProviderError) as exc:
            parse_task(data)
        assert exc.value.transient and exc.value.code == "invalid_response"
    done = parse_task({"id": "task_1", "status": "SUCCEEDED", "output": ["https://cdn.example/v.mp4"]})
    assert (done.status, done.progress, done.video_url) == (COMPLETED, 100, "https://cdn.example/v.mp4")


def test_a_moderated_prompt_fails_with_what_was_flagged(runway):
    client = runway.client()
    done = finish(client, client.create(prompt="Something nasty #moderation", **A))
    assert done.status == FAILED
    assert done.error_code == "SAFETY.INPUT.TEXT"
    assert done.error_message.startswith("Runway's moderation refused the prompt (SAFETY.INPUT.TEXT)")


def test_a_failed_task_carries_runways_reason(runway):
    client = runway.client()
    done = finish(client, client.create(prompt="A glass city #fail", **A))
    assert (done.status, done.error_code) == (FAILED, "INTERNAL.BAD_OUTPUT.CODE01")


def test_a_body_runway_refuses_is_permanent_and_says_why(runway):
    with pytest.raises(ProviderError) as exc:
        runway.client().create(prompt="A fox", **{**A, "seconds": "12"})
    assert exc.value.status == 400 and not exc.value.transient and not exc.value.maybe_sent
    assert "duration" in exc.value.message


def test_a_wrong_key_is_a_permanent_error_with_a_clear_message(runway):
    runway.api_key = "rw-wrong-secret-123"
    runway.save()
    with pytest.raises(ProviderError) as exc:
        runway.client().create(prompt="A fox", **A)
    assert exc.value.status == 401 and not exc.value.transient and exc.value.code == "invalid_api_key"
    assert exc.value.message.startswith("Runway refused the request (HTTP 401)")
    assert "rw-wrong-secret-123" not in exc.value.message


def test_429_is_transient_and_carries_retry_after(runway, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client = runway.client()
    client.create(prompt="first #slow", **A)
    with pytest.raises(ProviderError) as exc:
        client.create(prompt="second", **A)
    assert exc.value.rate_limited and exc.value.transient and exc.value.retry_after == 1
    assert not exc.value.maybe_sent


def test_a_flaky_503_and_an_answer_that_is_not_json_are_transient(runway):
    client = runway.client()
    flaky = client.create(prompt="A windmill #flaky", **A)
    with pytest.raises(ProviderError) as unavailable:
        client.retrieve(flaky.id)
    assert unavailable.value.transient and unavailable.value.status == 503
    assert finish(client, flaky).status == COMPLETED

    garbage = client.create(prompt="A melt #garbage", **A)
    with pytest.raises(ProviderError) as exc:
        client.retrieve(garbage.id)
    assert exc.value.transient and exc.value.code == "invalid_response"


def test_the_key_and_version_go_to_runway_but_never_to_the_cdn(runway, live_server, monkeypatch):
    """The output link on another origin (here the same server under another name) gets no key."""
    sent = []
    real_send = requests.Session.send

    def spy(session, request, **kwargs):
        sent.append(request)
        return real_send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", spy)
    runway.base_url = runway.base_url.replace("://localhost:", "://127.0.0.1:")
    runway.save()
    client = runway.client()
    done = finish(client, client.create(prompt="A lamp", **A))
    parts = urlsplit(done.video_url)
    assert parts.hostname == "127.0.0.1"
    done.video_url = urlunsplit(parts._replace(netloc=f"localhost:{parts.port}"))  # the "CDN"
    video = io.BytesIO()
    client.download(done, "video", video)

    assert video.getvalue()[4:8] == b"ftyp"
    api, cdn = sent[0], sent[-1]
    assert api.headers["Authorization"] == f"Bearer {SIM_KEY}" and api.headers["X-Runway-Version"] == "2024-11-06"
    assert urlsplit(cdn.url).hostname == "localhost"
    assert "Authorization" not in cdn.headers and "X-Runway-Version" not in cdn.headers


def test_add_backend_then_generate_completes_at_the_price_it_was_given(alice, sim_runway_url):
    out = StringIO()
    call_command(
        "add_backend",
        "My Runway",
        protocol="runway",
        base_url=sim_runway_url,
        api_key=SIM_KEY,
        price_per_second=Decimal("0.10"),
        stdout=out,
    )
    assert "Added backend My Runway (runway)" in out.getvalue()

    out = StringIO()
    call_command(
        "generate",
        user="alice",
        prompt="A lighthouse at dawn",
        backend="My Runway",
        model="gen4.5",
        size="1280x720",
        wait=True,
        json=True,
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert result["status"] == "completed" and result["error"] is None
    assert (result["model"], result["seconds"], result["size"]) == ("gen4.5", "5", "1280x720")
    assert result["cost_usd"] == "0.50"  # 5 s at $0.10 a second
    assert result["video_file"].endswith(".mp4")
    assert Job.objects.get().request == {"model": "gen4.5", "ratio": "1280:720", "duration": 5}
