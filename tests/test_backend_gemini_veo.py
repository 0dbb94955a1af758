"""The gemini_veo client against the simulator over real HTTP, and a Veo backend through the whole pipeline."""

from __future__ import annotations

import hashlib
import io
import json
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from PIL import Image

from generations.billing.models import CostKind
from generations.jobs.models import Generation
from generations.providers.base import COMPLETED, FAILED, QUEUED, RUNNING, ProviderError, ReferenceImage, RemoteJob
from generations.providers.gemini_veo.client import parameters_for, parse_operation
from simulator.models import VEO, Job
from tests.factories import SIM_KEY, make_backend
from tests.listener import Listener

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "veo-3.1-generate-preview"


@pytest.fixture
def veo(live_server, settings):
    settings.SITE_URL = live_server.url
    # The Gemini API has no idempotency keys: a lost create is reconciled, never re-sent.
    return make_backend(
        "Simulated Veo", "gemini_veo", f"{live_server.url}/simulator/veo/v1beta", honours_idempotency_keys=False
    )


def create(client, prompt="A red kite", seconds="8", size="1280x720", **extra):
    return client.create(
        prompt=prompt, model=MODEL, seconds=seconds, size=size, characters=[], idempotency_key="k", **extra
    )


def finish(client, job):
    for _ in range(300):
        job = client.retrieve(job.id)
        if job.status in (COMPLETED, FAILED):
            return job
        time.sleep(0.03)
    raise AssertionError("never finished")


def a_png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_it_creates_polls_and_downloads_a_video(veo):
    client = veo.client()
    job = create(client)
    assert job.status == QUEUED and job.id.startswith(f"models/{MODEL}/operations/op_")
    assert Job.objects.get(protocol=VEO).request == {"durationSeconds": 8, "aspectRatio": "16:9", "resolution": "720p"}

    running = client.retrieve(job.id)
    assert running.status in (RUNNING, COMPLETED) and 0 <= running.progress <= 100

    done = finish(client, job)
    assert done.status == COMPLETED and done.progress == 100
    assert done.video_url.endswith(":download?alt=media")
    video = io.BytesIO()
    assert client.download(done, "video", video) == len(video.getvalue()) > 0
    assert video.getvalue()[4:8] == b"ftyp"
    with pytest.raises(ProviderError) as no_thumbnail:
        client.download(done, "thumbnail", io.BytesIO())
    assert no_thumbnail.value.code == "no_asset" and not no_thumbnail.value.transient  # "no thumbnail", not retried


@pytest.mark.parametrize(
    "seconds, size, expected",
    [
        (4, "1280x720", {"durationSeconds": 4, "aspectRatio": "16:9", "resolution": "720p"}),
        ("6", "720x1280", {"durationSeconds": 6, "aspectRatio": "9:16", "resolution": "720p"}),
        ("8", "1920x1080", {"durationSeconds": 8, "aspectRatio": "16:9", "resolution": "1080p"}),
        ("8", "1080x1920", {"durationSeconds": 8, "aspectRatio": "9:16", "resolution": "1080p"}),
    ],
)
def test_the_studio_request_maps_onto_veo_parameters(seconds, size, expected):
    assert parameters_for(seconds, size) == expected


@pytest.mark.parametrize("seconds, size", [("5", "1280x720"), ("12", "1280x720"), ("8", "big"), ("x", "1280x720")])
def test_a_length_or_size_veo_cannot_make_is_refused_before_sending(veo, seconds, size):
    with pytest.raises(ProviderError) as refused:
        create(veo.client(), seconds=seconds, size=size)
    assert not refused.value.transient and not refused.value.maybe_sent
    assert not Job.objects.exists()


def test_characters_stills_travel_as_at_most_three_reference_images(veo):
    stills = [ReferenceImage(f"still-{n}.png", a_png((n * 60, 10, 10))) for n in range(4)]
    create(veo.client(), prompt="Mossy waves", images=stills)
    seen = Job.objects.get(protocol=VEO).images
    assert seen == [f"asset:image/png:{hashlib.sha256(s.content).hexdigest()[:16]}" for s in stills[:3]]


def test_a_safety_refusal_fails_the_job_with_googles_reason(veo):
    client = veo.client()
    done = finish(client, create(client, prompt="Something nasty #moderation"))
    assert done.status == FAILED and done.error_code == "moderation_blocked"
    assert "violate our policies" in done.error_message


def test_a_failed_operation_fails_the_job_with_its_message(veo):
    client = veo.client()
    done = finish(client, create(client, prompt="A glass city shatters #fail"))
    assert (done.status, done.error_code) == (FAILED, "internal")
    assert done.error_message == "The simulated renderer failed halfway through."


def test_a_wrong_key_is_a_permanent_error_that_never_shows_the_key(veo):
    veo.api_key = "AIza-wrong-secret-123"
    veo.save()
    with pytest.raises(ProviderError) as refused:
        create(veo.client())
    assert (refused.value.code, refused.value.status, refused.value.transient) == ("invalid_api_key", 400, False)
    assert "refused the API key" in refused.value.message and "AIza-wrong-secret-123" not in str(refused.value)


def test_429_is_transient_and_carries_retry_after(veo, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client = veo.client()
    create(client, prompt="first #slow")
    with pytest.raises(ProviderError) as limited:
        create(client, prompt="second")
    assert limited.value.rate_limited and limited.value.transient and limited.value.retry_after == 1
    assert limited.value.code == "resource_exhausted" and not limited.value.maybe_sent


def test_bad_arguments_are_permanent_errors_in_googles_words(veo):
    with pytest.raises(ProviderError) as not_an_image:
        create(veo.client(), images=[ReferenceImage("bad.png", b"not an image")])
    assert (not_an_image.value.status, not_an_image.value.code) == (400, "invalid_argument")
    assert "reference_images[0].image" in not_an_image.value.message and not not_an_image.value.transient
    with pytest.raises(ProviderError) as unknown_model:
        veo.client().create(
            prompt="x", model="sora-2", seconds="8", size="1280x720", characters=[], idempotency_key="k"
        )
    assert (unknown_model.value.status, unknown_model.value.code) == (404, "not_found")


def test_a_flaky_503_and_an_answer_that_is_not_json_are_transient(veo):
    client = veo.client()
    flaky = create(client, prompt="A windmill #flaky")
    with pytest.raises(ProviderError) as unavailable:
        client.retrieve(flaky.id)
    assert unavailable.value.status == 503 and unavailable.value.transient
    assert finish(client, flaky).status == COMPLETED

    garbage = create(client, prompt="A gateway melts #garbage")
    with pytest.raises(ProviderError) as not_json:
        client.retrieve(garbage.id)
    assert not_json.value.code == "invalid_response" and not_json.value.transient


def test_only_an_operation_name_is_ever_asked_for(veo):
    with pytest.raises(ProviderError) as refused:
        veo.client().retrieve("../../openai/v1/videos")
    assert refused.value.code == "invalid_remote_id" and not refused.value.transient


def test_odd_operations_are_rejected_or_read_carefully():
    name = f"models/{MODEL}/operations/op_1"
    with pytest.raises(ProviderError):
        parse_operation({"name": "models/x/operations/other"}, name)
    with pytest.raises(ProviderError):
        parse_operation({"name": name, "done": True}, name)
    assert parse_operation({"name": name, "metadata": {"progressPercent": 1e400}}, name).progress == 0
    empty = parse_operation({"name": name, "done": True, "response": {"generateVideoResponse": {}}}, name)
    assert (empty.status, empty.error_code) == (FAILED, "no_video")


def test_the_key_never_goes_to_another_origin_even_through_a_redirect(veo):
    elsewhere = Listener()
    redirect = (
        f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{elsewhere.port}/video.mp4\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()
    own = Listener(reply=redirect)
    try:
        veo.base_url = f"http://127.0.0.1:{own.port}/v1beta"
        client = veo.client()
        job = RemoteJob(id="models/m/operations/o", status=COMPLETED, video_url=f"{veo.base_url}/files/abc:download")
        assert client.download(job, "video", io.BytesIO()) == 4  # "clip", from the other origin
        assert f"x-goog-api-key: {SIM_KEY}".encode() in own.requests[0]  # the backend's own origin
        assert b"x-goog-api-key" not in elsewhere.requests[0].lower()
        assert SIM_KEY.encode() not in elsewhere.requests[0]
    finally:
        own.close()
        elsewhere.close()


def test_a_veo_backend_added_by_command_completes_a_job_and_charges_its_price(alice, live_server, settings):
    settings.SITE_URL = live_server.url
    call_command(
        "add_backend",
        "My Veo",
        protocol="gemini_veo",
        base_url=f"{live_server.url}/simulator/veo/v1beta",
        api_key=SIM_KEY,
        price_per_second=Decimal("0.10"),
        stdout=StringIO(),
    )
    out = StringIO()
    call_command(
        "generate",
        user="alice",
        prompt="A lighthouse at dawn",
        backend="My Veo",
        model=MODEL,
        seconds="4",
        size="1280x720",
        wait=True,
        json=True,
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert result["status"] == "completed" and result["video_file"].endswith(".mp4")
    generation = Generation.objects.get()
    assert generation.remote_id.startswith(f"models/{MODEL}/operations/")
    charge = generation.cost_entries.get(kind=CostKind.CHARGE)
    # The flag's row is the backend's video price (the protocol's list is not installed beside it).
    assert (charge.price.model, charge.price.amount) == ("", Decimal("0.10"))
    assert generation.charged() == Decimal("0.40") and result["cost_usd"] == "0.40"
    assert generation.thumbnail.name == ""  # Veo makes none
