"""The replicate client against the simulator over real HTTP, and a whole job through the studio."""

import hashlib
import io
import json
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
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
from generations.providers.replicate.client import parse_prediction
from simulator.models import Job
from tests.factories import SIM_KEY, make_backend
from tests.listener import Listener

pytestmark = pytest.mark.django_db(transaction=True)

TEXT_MODEL = "kwaivgi/kling-v1.6-standard"
IMAGE_MODEL = "kwaivgi/kling-v2.1"


@pytest.fixture
def sim_replicate_url(live_server):
    return f"{live_server.url}/simulator/replicate/v1"


@pytest.fixture
def replicate_backend(sim_replicate_url):
    return make_backend("Simulated Replicate", "replicate", sim_replicate_url)


def create(client, prompt="A red kite", model=TEXT_MODEL, seconds="5", size="720x1280", images=()):
    return client.create(
        prompt=prompt, model=model, seconds=seconds, size=size, characters=[], idempotency_key="k-1", images=images
    )


def finish(client, job, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.retrieve(job.id)
        if job.status in (COMPLETED, FAILED):
            return job
        time.sleep(0.03)
    raise AssertionError(f"{job.id} never finished")


def a_png(size=(64, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 160, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_it_creates_polls_and_downloads_a_video(replicate_backend):
    client = replicate_backend.client()
    job = create(client, seconds=5)  # an int works as well as a string
    assert job.id.startswith("pred_") and job.status == QUEUED and job.progress == 0
    # The studio's request, in the model's own arguments.
    assert Job.objects.get(pk=job.id).request["input"] == {
        "prompt": "A red kite",
        "duration": 5,
        "aspect_ratio": "9:16",
        "cfg_scale": 0.5,
    }

    done = finish(client, job)
    assert (done.status, done.progress, done.seconds) == (COMPLETED, 100, "5")
    assert "/simulator/replicate/delivery/" in done.video_url
    video = io.BytesIO()
    assert client.download(done, "video", video) > 1000
    assert video.getvalue()[4:8] == b"ftyp"
    with pytest.raises(ProviderError) as no_thumbnail:  # the pipeline then shows a placeholder
        client.download(done, "thumbnail", io.BytesIO())
    assert no_thumbnail.value.code == "no_asset" and not no_thumbnail.value.transient


def test_progress_rises_while_the_prediction_runs(replicate_backend, settings):
    settings.SIMULATOR_SPEED = 5  # about three seconds
    client = replicate_backend.client()
    job = create(client)
    seen = []
    while (job := client.retrieve(job.id)).status != COMPLETED:
        seen.append((job.status, job.progress))
        time.sleep(0.1)
    running = [progress for status, progress in seen if status == RUNNING]
    assert running and running == sorted(running) and running[-1] > running[0]
    assert all(0 <= progress < 100 for progress in running)


def test_a_reference_image_goes_as_the_start_image(replicate_backend):
    client = replicate_backend.client()
    png = a_png((36, 64))
    job = create(
        client,
        model=IMAGE_MODEL,
        images=[ReferenceImage("mossy.png", png, "image/png"), ReferenceImage("other.png", a_png(), "image/png")],
    )
    seen = Job.objects.get(pk=job.id)
    assert seen.images == [f"start_image: sha256:{hashlib.sha256(png).hexdigest()[:16]}"]  # the first one only
    assert seen.request["input"]["mode"] == "standard" and "aspect_ratio" not in seen.request["input"]
    assert seen.size == "720x1280"  # Kling takes the frame from the start image
    assert finish(client, job).status == COMPLETED


def test_an_image_to_video_model_without_an_image_is_refused_with_a_hint(replicate_backend):
    with pytest.raises(ProviderError) as refused:
        create(replicate_backend.client(), model=IMAGE_MODEL)
    assert refused.value.code == "invalid_input" and refused.value.status == 422
    assert not refused.value.transient and not refused.value.maybe_sent
    assert "start_image is required" in refused.value.message
    assert "needs a start image: give one, or mention a character" in refused.value.message


def test_an_unsupported_length_is_refused_in_the_providers_words(replicate_backend):
    with pytest.raises(ProviderError) as refused:
        create(replicate_backend.client(), seconds="7")
    assert refused.value.code == "invalid_input"
    assert "duration must be one of the following: 5, 10" in refused.value.message


def test_a_moderated_prompt_fails_with_the_providers_reason(replicate_backend):
    client = replicate_backend.client()
    done = finish(client, create(client, prompt="Something nasty #moderation"))
    assert done.status == FAILED and done.error_code == "moderation_blocked"
    assert "flagged as sensitive" in done.error_message


def test_a_failing_prompt_fails_with_the_models_error(replicate_backend):
    client = replicate_backend.client()
    done = finish(client, create(client, prompt="A glass city shatters #fail"))
    assert (done.status, done.error_code) == (FAILED, "prediction_failed")
    assert done.error_message == "The simulated renderer failed halfway through."


def test_a_wrong_key_is_a_permanent_error_that_never_shows_the_key(replicate_backend):
    replicate_backend.api_key = "r8_wrong-secret-123"
    replicate_backend.save()
    with pytest.raises(ProviderError) as exc:
        replicate_backend.client().retrieve("pred_nope")
    assert exc.value.status == 401 and exc.value.code == "unauthorized" and not exc.value.transient
    assert "refused the API token" in exc.value.message
    assert "r8_wrong-secret-123" not in str(exc.value)


def test_429_is_transient_and_carries_retry_after(replicate_backend, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client = replicate_backend.client()
    create(client, prompt="first #slow")
    with pytest.raises(ProviderError) as exc:
        create(client, prompt="second")
    assert exc.value.rate_limited and exc.value.transient and exc.value.retry_after == 1
    assert not exc.value.maybe_sent


def test_a_flaky_or_garbage_answer_is_transient(replicate_backend):
    client = replicate_backend.client()
    flaky = create(client, prompt="A windmill #flaky")
    with pytest.raises(ProviderError) as unavailable:
        client.retrieve(flaky.id)
    assert unavailable.value.status == 503 and unavailable.value.transient
    assert finish(client, flaky).status == COMPLETED

    garbage = create(client, prompt="A gateway melts #garbage")
    with pytest.raises(ProviderError) as not_json:
        client.retrieve(garbage.id)
    assert not_json.value.code == "invalid_response" and not_json.value.transient


def test_statuses_are_normalised_and_bad_objects_rejected():
    def prediction(**fields):
        return {"id": "p1", "status": "starting", "input": {"duration": 10}, "output": None, "error": None, **fields}

    assert parse_prediction(prediction()).status == QUEUED
    running = parse_prediction(prediction(status="processing", logs="Generating\n 42%|████      | 42/100\n"))
    assert (running.status, running.progress) == (RUNNING, 42)
    done = parse_prediction(prediction(status="succeeded", output=["https://replicate.delivery/x/out.mp4"]))
    assert (done.status, done.video_url, done.seconds) == (COMPLETED, "https://replicate.delivery/x/out.mp4", "10")
    canceled = parse_prediction(prediction(status="canceled"))
    assert (canceled.status, canceled.error_code) == (FAILED, "canceled")
    nsfw = parse_prediction(prediction(status="failed", error="NSFW content detected"))
    assert nsfw.error_code == "moderation_blocked"
    for bad in (prediction(status="exploded"), {"status": "starting"}, prediction(status="succeeded", output=None)):
        with pytest.raises(ProviderError) as exc:
            parse_prediction(bad)
        assert exc.value.transient


def test_the_key_never_goes_to_another_origin(replicate_backend):
    listener = Listener(
        b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 4\r\nConnection: close\r\n\r\nclip"
    )
    try:
        job = RemoteJob(id="p1", status=COMPLETED, video_url=f"http://127.0.0.1:{listener.port}/out.mp4")
        assert replicate_backend.client().download(job, "video", io.BytesIO()) == 4
    finally:
        listener.close()
    sent = listener.requests[0]
    assert sent.startswith(b"GET /out.mp4 ")
    assert b"authorization" not in sent.lower() and SIM_KEY.encode() not in sent


def test_delete_cancels_a_running_prediction(replicate_backend):
    client = replicate_backend.client()
    job = create(client, prompt="A lighthouse, forever #slow")
    client.delete(job.id)
    canceled = client.retrieve(job.id)
    assert (canceled.status, canceled.error_code) == (FAILED, "canceled")


def test_a_lost_create_is_found_again_by_its_prompt_model_and_time(replicate_backend):
    client = replicate_backend.client()
    now = time.time()

    def lost(prompt, model=TEXT_MODEL, after=now - 60, before=now + 60):
        return LostCreate(
            prompt=prompt, model=model, seconds=5, size="1280x720", created_after=after, created_before=before
        )

    job = create(client, prompt="A snail races a leaf")
    create(client, prompt="Something else")
    assert [j.id for j in client.find_recent(lost("A snail races a leaf"))] == [job.id]
    twin = create(client, prompt="A snail races a leaf")
    assert {j.id for j in client.find_recent(lost("A snail races a leaf"))} == {job.id, twin.id}
    assert client.find_recent(lost("A snail races a leaf", after=now + 3600, before=now + 7200)) == []
    assert client.find_recent(lost("Nobody asked")) == []


def test_what_replicate_cannot_do_is_unsupported(replicate_backend):
    client = replicate_backend.client()
    for call in (
        lambda: client.remix("p1", "again", "k"),
        lambda: client.extract_character("p1", "Mossy"),
        lambda: client.create_character(name="Mossy", description="", clip=None, clip_url="https://x"),
    ):
        with pytest.raises(ProviderError) as exc:
            call()
        assert exc.value.code == "unsupported"


def run(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_a_backend_added_by_command_makes_a_video_charged_at_its_price(alice, sim_replicate_url):
    run(
        "add_backend",
        "Replicate",
        protocol="replicate",
        base_url=sim_replicate_url,
        api_key=SIM_KEY,
        price_per_second=Decimal("0.10"),
    )
    result = json.loads(
        run(
            "generate",
            user="alice",
            prompt="A snail race",
            backend="Replicate",
            model=TEXT_MODEL,
            size="1280x720",
            wait=True,
            json=True,
        )
    )
    assert result["status"] == "completed", result["error"]
    assert (result["seconds"], result["cost_usd"]) == ("5", "0.50")  # the shortest it offers, at $0.10/s
    assert result["video_file"].endswith(".mp4")
    assert Job.objects.get().request["input"]["aspect_ratio"] == "16:9"

    with pytest.raises(CommandError, match="needs a start image"):
        run(
            "generate",
            user="alice",
            prompt="A snail, animated",
            backend="Replicate",
            model=IMAGE_MODEL,
            size="1280x720",
            wait=True,
        )
