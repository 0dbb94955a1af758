"""The fal_queue client against the simulator over real HTTP, and a job through the whole pipeline."""

import io
import json
import time
from io import StringIO

import pytest
from django.core.management import call_command
from PIL import Image

from generations.providers.base import LostCreate, ProviderError, ReferenceImage, RemoteJob
from generations.providers.fal_queue import KLING_MASTER
from generations.providers.fal_queue.client import app_root
from simulator.models import Job
from tests.factories import SIM_KEY, make_backend
from tests.listener import Listener

pytestmark = pytest.mark.django_db(transaction=True)

KLING_STANDARD = "fal-ai/kling-video/v2.1/standard/text-to-video"
KLING_IMAGE = "fal-ai/kling-video/v2.1/standard/image-to-video"


@pytest.fixture
def fal(live_server, settings):
    settings.SITE_URL = live_server.url
    return make_backend("Simulated fal", "fal_queue", f"{live_server.url}/simulator/fal")


def create(client, prompt="A red kite", model=KLING_MASTER, seconds="5", size="1920x1080", images=()):
    return client.create(
        prompt=prompt, model=model, seconds=seconds, size=size, characters=[], idempotency_key="k", images=images
    )


def finish(client, job, seen=None):
    for _ in range(300):
        job = client.retrieve(job.id)
        if seen is not None:
            seen.append(job)
        if job.status in ("completed", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError("never finished")


def a_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_it_maps_the_request_onto_klings_arguments_polls_and_downloads_the_video(fal, settings):
    settings.SIMULATOR_SPEED = 10  # about a second, so the polls see it rendering
    client = fal.client()
    waiting = client.retrieve(create(client, prompt="A very long take #slow").id)
    assert (waiting.status, waiting.progress) == ("queued", 0)

    job = create(client, seconds=5, size="1080x1920")  # seconds may arrive as an int
    request_id = job.id.rsplit("/", 1)[1]
    assert job.id == f"fal-ai/kling-video/{request_id}" and job.status == "queued"

    sent = Job.objects.get(pk=request_id)
    assert sent.model == KLING_MASTER and sent.prompt == "A red kite"
    assert sent.request == {
        "duration": "5",
        "aspect_ratio": "9:16",
        "negative_prompt": "blur, distort, and low quality",
        "cfg_scale": 0.5,
    }

    seen = []
    done = finish(client, job, seen)
    assert any(0 < step.progress < 100 for step in seen if step.status == "in_progress")  # read from fal's logs
    assert done.status == "completed" and done.progress == 100
    assert done.video_url.endswith(f"/simulator/fal-media/files/{request_id}/output.mp4")
    video = io.BytesIO()
    assert client.download(done, "video", video) == len(video.getvalue())
    assert video.getvalue()[4:8] == b"ftyp"
    with pytest.raises(ProviderError) as no_thumbnail:
        client.download(done, "thumbnail", io.BytesIO())
    assert no_thumbnail.value.code == "no_asset" and not no_thumbnail.value.transient  # "no thumbnail" to the studio


def test_a_moderation_refusal_is_a_failed_job_saying_what_was_flagged(fal):
    client = fal.client()
    done = finish(client, create(client, prompt="Something nasty #moderation"))
    assert done.status == "failed"
    assert done.error_code == "content_policy_violation"
    assert "flagged by a content checker" in done.error_message
    assert "in prompt" in done.error_message and "flagged: violence" in done.error_message


def test_a_failed_render_is_a_failed_job_with_the_models_reason(fal):
    client = fal.client()
    done = finish(client, create(client, prompt="A glass city shatters #fail"))
    assert (done.status, done.error_code) == ("failed", "generation_failed")
    assert done.error_message == "The simulated renderer failed halfway through."


def test_arguments_the_app_refuses_are_a_permanent_error_naming_the_argument(fal):
    with pytest.raises(ProviderError) as refused:
        create(fal.client(), seconds="7")
    assert refused.value.status == 422 and not refused.value.transient and not refused.value.maybe_sent
    assert refused.value.code == "enum" and "in duration" in refused.value.message


def test_a_wrong_key_is_a_permanent_error_that_says_so_and_never_shows_the_key(fal):
    fal.api_key = "fal-wrong-secret-123"
    fal.save()
    for call in (lambda c: create(c), lambda c: c.retrieve("fal-ai/kling-video/req_nope")):
        with pytest.raises(ProviderError) as refused:
            call(fal.client())
        assert refused.value.status == 401 and not refused.value.transient
        assert "refused the API key" in refused.value.message
        assert "fal-wrong-secret-123" not in refused.value.message


def test_429_is_transient_and_carries_retry_after(fal, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client = fal.client()
    create(client, prompt="A very long take #slow")
    with pytest.raises(ProviderError) as limited:
        create(client, prompt="One more")
    assert limited.value.rate_limited and limited.value.transient and limited.value.retry_after == 1
    assert not limited.value.maybe_sent


def test_a_503_and_an_answer_that_is_not_json_are_transient(fal):
    client = fal.client()
    flaky = create(client, prompt="A windmill in fog #flaky")
    with pytest.raises(ProviderError) as unavailable:
        client.retrieve(flaky.id)
    assert unavailable.value.transient and unavailable.value.code == "runner_scheduling_failure"
    assert finish(client, flaky).status == "completed"

    garbage = create(client, prompt="A gateway melts #garbage")
    with pytest.raises(ProviderError) as not_json:
        client.retrieve(garbage.id)
    assert not_json.value.transient and not_json.value.code == "invalid_response"


def test_a_reference_image_goes_as_a_data_uri_where_the_app_takes_one_and_nowhere_else(fal):
    fal.offers = {
        **fal.offers,
        KLING_IMAGE: {
            "seconds": ["5"],
            "sizes": ["1920x1080"],
            "arguments": {"prompt": "{prompt}", "duration": "{seconds}", "image_url": "{image}"},
        },
    }
    fal.save()
    client = fal.client()
    png = a_png()
    still = ReferenceImage("mossy.png", png, "image/png")

    with_image = create(client, prompt="Mossy waves", model=KLING_IMAGE, images=[still])
    seen = Job.objects.get(pk=with_image.id.rsplit("/", 1)[1])
    assert seen.images == [f"image_url (image/png, {len(png)} bytes)"]
    assert seen.request == {"duration": "5", "image_url": "data:image/png;base64,…"}
    assert seen.size == "64x36"  # the simulator read the image itself

    # Kling text-to-video has no image argument: the still is not sent.
    without = create(client, prompt="Mossy waves", images=[still])
    assert Job.objects.get(pk=without.id.rsplit("/", 1)[1]).images == []


def test_the_key_never_goes_to_the_file_host(fal, settings, live_server):
    # The simulator's file links on another origin (127.0.0.1 instead of localhost), like fal's CDN.
    settings.SIMULATOR_FAL_MEDIA_URL = live_server.url.replace("localhost", "127.0.0.1")
    client = fal.client()
    done = finish(client, create(client))
    assert done.video_url.startswith("http://127.0.0.1:")
    assert client.download(done, "video", io.BytesIO()) > 0

    cdn = Listener(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nmp4!")
    try:
        url = f"http://127.0.0.1:{cdn.port}/files/monkey/output.mp4"
        job = RemoteJob(id="fal-ai/kling-video/req_x", status="completed", video_url=url)
        assert client.download(job, "video", io.BytesIO()) == 4
        time.sleep(0.05)
        [sent] = cdn.requests
        assert b"authorization" not in sent.lower() and SIM_KEY.encode() not in sent
    finally:
        cdn.close()


def test_deleting_cancels_a_request_and_a_finished_one_needs_nothing(fal):
    client = fal.client()
    slow = create(client, prompt="A very long take #slow")
    client.delete(slow.id)
    assert finish(client, slow).status == "failed"
    client.delete(slow.id)  # already completed: nothing to do


def test_what_the_queue_api_does_not_have_is_said_plainly(fal):
    client = fal.client()
    assert client.find_recent(LostCreate("A red kite", "m", 5, "1280x720", 0, 2e9)) == []
    for call in (
        lambda: client.remix("fal-ai/kling-video/req_x", "again", "k"),
        lambda: client.create_character(name="Mossy", description="", clip=None, clip_url=""),
        lambda: client.extract_character("req_x", "Mossy"),
    ):
        with pytest.raises(ProviderError) as unsupported:
            call()
        assert unsupported.value.code == "unsupported" and not unsupported.value.transient


def test_requests_live_under_the_apps_owner_and_alias():
    assert app_root(KLING_MASTER) == "fal-ai/kling-video"
    assert app_root("fal-ai/flux") == "fal-ai/flux"
    assert app_root("workflows/me/my-flow/run") == "workflows/me/my-flow"
    with pytest.raises(ProviderError):
        app_root("kling")


def test_nothing_listening_is_transient_and_certainly_not_sent(fal):
    fal.base_url = "http://127.0.0.1:9"
    with pytest.raises(ProviderError) as down:
        create(fal.client())
    assert down.value.transient and not down.value.maybe_sent


def test_add_backend_then_the_pipeline_completes_a_job_at_the_price_rows_cost(alice, live_server, settings):
    settings.SITE_URL = live_server.url
    base_url = f"{live_server.url}/simulator/fal"
    standard = {
        KLING_STANDARD: {
            "seconds": ["5"],
            "sizes": ["1080x1920"],
            "arguments": {"prompt": "{prompt}", "duration": "{seconds}", "aspect_ratio": "{aspect_ratio}"},
        }
    }
    # As an admin types it: `manage.py add_backend fal --protocol fal_queue --base-url … --price-per-second 0.10`.
    call_command(
        "add_backend",
        "fal",
        "--protocol",
        "fal_queue",
        "--base-url",
        base_url,
        "--api-key",
        SIM_KEY,
        "--price-per-second",
        "0.10",
        "--offers",
        json.dumps(standard),
        stdout=StringIO(),
    )
    # Without a price flag, the protocol's own rows: Kling 2.1 Master at $0.28/s, from fal's model page.
    call_command(
        "add_backend",
        "fal list price",
        "--protocol",
        "fal_queue",
        "--base-url",
        base_url,
        "--api-key",
        SIM_KEY,
        stdout=StringIO(),
    )

    def generate(backend, model, seconds, size):
        out = StringIO()
        call_command(
            "generate",
            user="alice",
            prompt="A lantern on a cliff",
            backend=backend,
            model=model,
            seconds=seconds,
            size=size,
            wait=True,
            json=True,
            timeout=30,
            stdout=out,
        )
        return json.loads(out.getvalue())

    flagged = generate("fal", KLING_STANDARD, "5", "1080x1920")
    assert flagged["status"] == "completed" and flagged["cost_usd"] == "0.50"
    assert flagged["video_file"].endswith(".mp4") and flagged["error"] is None
    assert Job.objects.get(model=KLING_STANDARD).request == {"duration": "5", "aspect_ratio": "9:16"}

    listed = generate("fal list price", KLING_MASTER, "10", "1920x1080")
    assert listed["status"] == "completed" and listed["cost_usd"] == "2.80"
    assert Job.objects.get(model=KLING_MASTER).request["duration"] == "10"
