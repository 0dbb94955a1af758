"""The simulator speaks Runway's API well enough for the official `runwayml` package."""

from __future__ import annotations

import base64
import io
import time

import httpx
import pytest
import runwayml
from PIL import Image
from runwayml.lib import polling

from simulator.models import RUNWAY, Job
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim_runway_host(live_server):
    """The SDK's base URL is the API's host: its paths start with /v1/."""
    return f"{live_server.url}/simulator/runway"


@pytest.fixture
def client(sim_runway_host):
    return runwayml.RunwayML(api_key=SIM_KEY, base_url=sim_runway_host, max_retries=0)


@pytest.fixture
def quick_polls(monkeypatch):
    # wait_for_task_output sleeps 6 s (± 1.5) between polls; the simulator is 50x faster than that.
    monkeypatch.setattr(polling, "POLL_TIME", 0.05)
    monkeypatch.setattr(polling, "POLL_JITTER", 0)


def wait_until_done(client, task_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        task = client.tasks.retrieve(task_id)
        seen.append(task.status)
        if task.status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return task, seen
        time.sleep(0.02)
    raise AssertionError(f"{task_id} still {task.status} after {timeout}s")


def png_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (30, 120, 200)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_it_makes_a_video_from_text_that_succeeds_with_a_playable_mp4(client):
    created = client.text_to_video.create(
        model="gen4.5", prompt_text="A paper boat drifts down a rainy street", ratio="1280:720", duration=5
    )
    assert created.id.startswith("task_")
    assert created.estimated_cost.credits > 0

    task, _ = wait_until_done(client, created.id)
    assert task.status == "SUCCEEDED"
    assert task.created_at.tzinfo is not None
    assert task.cost.credits == created.estimated_cost.credits

    [url] = task.output
    assert "/simulator/runway/cdn/" in url
    mp4 = httpx.get(url).content  # a CDN link: no key needed
    assert mp4[4:8] == b"ftyp"
    job = Job.objects.get(pk=created.id)
    assert (job.protocol, job.model, job.size, job.seconds) == (RUNWAY, "gen4.5", "1280x720", 5)
    assert job.request == {"model": "gen4.5", "ratio": "1280:720", "duration": 5}


def test_running_tasks_report_progress_as_a_fraction(client, settings):
    settings.SIMULATOR_SPEED = 5
    created = client.text_to_video.create(model="gen4.5", prompt_text="A slow sunrise", ratio="720:1280", duration=5)
    deadline = time.monotonic() + 5
    while (task := client.tasks.retrieve(created.id)).status != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert task.status == "RUNNING"
    assert 0 <= task.progress < 1


def test_wait_for_task_output_returns_the_finished_task(client, quick_polls):
    created = client.text_to_video.create(model="gen4.5", prompt_text="A fox in the snow", ratio="720:1280", duration=2)
    task = created.wait_for_task_output(timeout=10)
    assert task.status == "SUCCEEDED" and task.output[0].startswith("http")


def test_an_image_becomes_the_first_frame_and_the_simulator_records_it(client, quick_polls):
    created = client.image_to_video.create(
        model="gen4.5",
        prompt_text="The puppet waves",
        prompt_image=[{"uri": png_uri(), "position": "first"}],
        ratio="960:960",
        duration=5,
    )
    assert created.wait_for_task_output(timeout=10).status == "SUCCEEDED"
    job = Job.objects.get(pk=created.id)
    assert len(job.images) == 1 and job.images[0].startswith("sha256-") and job.images[0].endswith(".png")
    assert job.request["promptImage"] == [{"position": "first", "uri": job.images[0]}]
    assert job.size == "960x960"


def test_it_validates_the_body_like_the_real_api(client):
    with pytest.raises(runwayml.BadRequestError) as bad_ratio:
        client.text_to_video.create(model="gen4.5", prompt_text="A fox", ratio="960:960", duration=5)
    assert bad_ratio.value.body["error"] == "Validation of body failed"
    assert bad_ratio.value.body["issues"][0]["path"] == ["ratio"]

    with pytest.raises(runwayml.BadRequestError) as too_long:
        client.text_to_video.create(model="gen4.5", prompt_text="A fox", ratio="1280:720", duration=11)
    assert too_long.value.body["issues"][0]["path"] == ["duration"]

    with pytest.raises(runwayml.BadRequestError) as not_an_image:
        client.image_to_video.create(
            model="gen4.5",
            prompt_text="A fox",
            prompt_image="data:image/png;base64,aGVsbG8=",
            ratio="1280:720",
            duration=5,
        )
    assert not_an_image.value.body["issues"][0]["path"] == ["promptImage"]

    with pytest.raises(runwayml.BadRequestError) as image_only_model:
        client.text_to_video.create(model="gen4_turbo", prompt_text="A fox", ratio="1280:720", duration=5)
    assert image_only_model.value.body["issues"][0]["path"] == ["model"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gen4.5", "ratio": "1280:720", "duration": 5},  # no prompt
        {"model": "gen4.5", "promptText": "", "ratio": "1280:720", "duration": 5},
        {"model": "gen4.5", "promptText": "x" * 1001, "ratio": "1280:720", "duration": 5},
        {"model": "gen4.5", "promptText": "A fox", "ratio": "1280:720", "duration": "five"},
        {"model": "gen4.5", "promptText": "A fox", "ratio": "1280:720", "duration": True},
        {"model": "gen4.5", "promptText": "A fox", "ratio": "1280:720", "duration": 5.5},
        {"model": "gen4.5", "promptText": "A fox", "ratio": "1280:720"},
        {"model": "sora-2", "promptText": "A fox", "ratio": "1280:720", "duration": 5},
        {"model": "gen4.5", "promptText": "A fox", "ratio": 1280, "duration": 5},
        [],
    ],
)
def test_bad_input_is_a_400_in_runways_shape_never_a_500(client, body):
    with pytest.raises(runwayml.BadRequestError) as refused:
        client.post("/v1/text_to_video", body=body, cast_to=httpx.Response)
    assert refused.value.body["error"] == "Validation of body failed"
    assert refused.value.body["issues"]


def test_a_number_too_large_for_a_float_is_a_400(sim_runway_host):
    response = httpx.post(
        f"{sim_runway_host}/v1/text_to_video",
        content=b'{"model": "gen4.5", "promptText": "A fox", "ratio": "1280:720", "duration": 1e400}',
        headers={
            "Authorization": f"Bearer {SIM_KEY}",
            "X-Runway-Version": "2024-11-06",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.json()["issues"][0]["path"] == ["duration"]
    not_json = httpx.post(
        f"{sim_runway_host}/v1/text_to_video",
        content=b"{nope",
        headers={"Authorization": f"Bearer {SIM_KEY}", "X-Runway-Version": "2024-11-06"},
    )
    assert not_json.status_code == 400


def test_a_moderated_prompt_ends_as_a_failed_task_with_a_safety_code(client):
    created = client.text_to_video.create(
        model="gen4.5", prompt_text="Something nasty #moderation", ratio="1280:720", duration=5
    )
    task, seen = wait_until_done(client, created.id)
    assert task.status == "FAILED"
    assert "RUNNING" not in seen  # refused before rendering started
    assert task.failure_code == "SAFETY.INPUT.TEXT"
    assert "moderation" in task.failure
    assert task.cost.credits == 0


def test_a_failing_prompt_fails_halfway_and_wait_raises(client, quick_polls):
    created = client.text_to_video.create(
        model="gen4.5", prompt_text="A glass city #fail", ratio="1280:720", duration=5
    )
    with pytest.raises(polling.TaskFailedError) as failed:
        created.wait_for_task_output(timeout=10)
    details = failed.value.task_details
    assert details.status == "FAILED"
    assert details.failure_code == "INTERNAL.BAD_OUTPUT.CODE01"
    assert details.failure


def test_a_wrong_key_is_refused(sim_runway_host):
    intruder = runwayml.RunwayML(api_key="not-a-key", base_url=sim_runway_host, max_retries=0)
    with pytest.raises(runwayml.AuthenticationError) as refused:
        intruder.text_to_video.create(model="gen4.5", prompt_text="A fox", ratio="1280:720", duration=5)
    assert refused.value.status_code == 401
    assert "not-a-key" not in refused.value.response.text


def test_a_request_without_the_version_header_is_refused(sim_runway_host):
    unversioned = runwayml.RunwayML(
        api_key=SIM_KEY, base_url=sim_runway_host, max_retries=0, default_headers={"X-Runway-Version": runwayml.Omit()}
    )
    with pytest.raises(runwayml.BadRequestError) as refused:
        unversioned.text_to_video.create(model="gen4.5", prompt_text="A fox", ratio="1280:720", duration=5)
    assert "X-Runway-Version header is required" in refused.value.body["error"]
    wrong = runwayml.RunwayML(api_key=SIM_KEY, base_url=sim_runway_host, max_retries=0, runway_version="2023-01-01")
    with pytest.raises(runwayml.BadRequestError):
        wrong.tasks.retrieve("task_x")


def test_it_answers_429_when_the_key_has_too_many_tasks_in_flight(client, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client.text_to_video.create(model="gen4.5", prompt_text="A very long take #slow", ratio="1280:720", duration=5)
    with pytest.raises(runwayml.RateLimitError) as limited:
        client.text_to_video.create(model="gen4.5", prompt_text="One more", ratio="1280:720", duration=5)
    assert limited.value.response.headers["Retry-After"] == "1"
    assert "Too many tasks" in limited.value.body["error"]


def test_a_task_waiting_behind_another_is_throttled(client, settings):
    settings.SIMULATOR_SPEED = 1  # each waits 1.5 s in the queue: time enough to look
    client.text_to_video.create(model="gen4.5", prompt_text="First in line", ratio="1280:720", duration=5)
    second = client.text_to_video.create(model="gen4.5", prompt_text="Second", ratio="1280:720", duration=5)
    assert client.tasks.retrieve(second.id).status == "THROTTLED"


def test_a_new_task_is_pending_and_delete_cancels_it_for_good(client):
    created = client.text_to_video.create(model="gen4.5", prompt_text="A kite #slow", ratio="1280:720", duration=5)
    pending = client.tasks.retrieve(created.id)
    assert pending.status == "PENDING" and pending.estimated_cost.credits > 0
    assert client.tasks.delete(created.id) is None
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve(created.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.delete(created.id)


def test_a_flaky_task_answers_503_once_then_recovers(client):
    created = client.text_to_video.create(model="gen4.5", prompt_text="A windmill #flaky", ratio="1280:720", duration=5)
    with pytest.raises(runwayml.InternalServerError) as unavailable:
        client.tasks.retrieve(created.id)
    assert unavailable.value.status_code == 503
    assert wait_until_done(client, created.id)[0].status == "SUCCEEDED"


def test_a_garbage_task_answers_200_with_a_body_that_is_not_json(client):
    created = client.text_to_video.create(model="gen4.5", prompt_text="A melt #garbage", ratio="1280:720", duration=5)
    raw = client.tasks.with_raw_response.retrieve(created.id)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/html")


def test_an_output_link_with_a_bad_signature_is_refused(client):
    created = client.text_to_video.create(model="gen4.5", prompt_text="A lamp", ratio="1280:720", duration=2)
    task, _ = wait_until_done(client, created.id)
    assert httpx.get(task.output[0].replace("signature=", "signature=0")).status_code == 403
