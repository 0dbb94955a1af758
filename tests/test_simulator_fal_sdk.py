"""The simulator speaks fal's queue API well enough for the official `fal-client` package."""

from __future__ import annotations

import time

import fal_client
import httpx
import pytest
from fal_client import client as fal_sdk

from simulator.models import Job
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

KLING = "fal-ai/kling-video/v2.1/master/text-to-video"


@pytest.fixture
def client(live_server, monkeypatch):
    # fal-client builds submit URLs from a module constant (https://queue.fal.run/ by default, or the
    # FAL_QUEUE_RUN_HOST env var read at import, always https); status/result/cancel come from the answer.
    monkeypatch.setattr(fal_sdk, "QUEUE_URL_FORMAT", f"{live_server.url}/simulator/fal/")
    return fal_client.SyncClient(key=SIM_KEY)


def wait_until_completed(handle, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = handle.status(with_logs=True)
        seen.append(status)
        if isinstance(status, fal_client.Completed):
            return status, seen
        time.sleep(0.02)
    raise AssertionError(f"{handle.request_id} still {seen[-1]} after {timeout}s")


def test_it_queues_a_kling_request_that_completes_with_a_playable_mp4(client, settings):
    settings.SIMULATOR_SPEED = 10  # about a second, so the polls see it rendering
    handle = client.submit(
        KLING,
        {
            "prompt": "A paper boat drifts down a rainy street",
            "duration": "5",
            "aspect_ratio": "9:16",
            "negative_prompt": "blur",
            "cfg_scale": 0.5,
        },
    )
    assert handle.request_id.startswith("req_")
    # Status, result and cancel live under owner/alias only: the endpoint path is dropped.
    assert handle.status_url.endswith(f"/simulator/fal/fal-ai/kling-video/requests/{handle.request_id}/status")
    assert handle.response_url.endswith(f"/simulator/fal/fal-ai/kling-video/requests/{handle.request_id}")
    assert handle.cancel_url.endswith(f"/requests/{handle.request_id}/cancel")

    done, seen = wait_until_completed(handle)
    running = [status for status in seen if isinstance(status, fal_client.InProgress)]
    assert running and "Generating video" in running[-1].logs[-1]["message"]
    assert done.error is None and done.metrics["inference_time"] > 0

    result = handle.get()
    assert result["video"]["content_type"] == "video/mp4"
    assert result["video"]["file_size"] > 0
    mp4 = httpx.get(result["video"]["url"]).content  # a public file link: no key needed
    assert mp4[4:8] == b"ftyp" and len(mp4) == result["video"]["file_size"]

    job = Job.objects.get(pk=handle.request_id)
    assert (job.model, job.seconds, job.size) == (KLING, 5, "1080x1920")
    assert job.request == {"duration": "5", "aspect_ratio": "9:16", "negative_prompt": "blur", "cfg_scale": 0.5}
    assert job.images == []


def test_a_queued_request_says_how_many_wait_ahead_of_it(client, settings):
    settings.SIMULATOR_SPEED = 10  # queued for seconds
    first = client.submit(KLING, {"prompt": "A very long take #slow"})
    second = client.submit(KLING, {"prompt": "Another long take #slow"})
    assert first.status() == fal_client.Queued(position=0)
    assert second.status() == fal_client.Queued(position=1)


def test_subscribe_and_a_handle_rebuilt_from_the_app_id_work_too(client):
    updates = []
    result = client.subscribe(
        KLING, {"prompt": "A red kite over green hills"}, with_logs=True, interval=0.02, on_queue_update=updates.append
    )
    assert result["video"]["url"].endswith("/output.mp4")
    assert isinstance(updates[-1], fal_client.Completed)

    request_id = Job.objects.get().id
    assert isinstance(client.status(KLING, request_id), fal_client.Completed)
    assert client.result(KLING, request_id) == result


def test_a_moderated_prompt_completes_and_its_result_is_a_422_content_policy_violation(client):
    handle = client.submit(KLING, {"prompt": "Something nasty #moderation"})
    done, _ = wait_until_completed(handle)
    assert done.error_type == "content_policy_violation"
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        handle.get()
    assert refused.value.status_code == 422
    [detail] = refused.value.message
    assert (detail["type"], detail["loc"], detail["categories"]) == (
        "content_policy_violation",
        ["body", "prompt"],
        ["violence"],
    )
    assert refused.value.response.headers["X-Fal-Error-Type"] == "content_policy_violation"


def test_a_failing_prompt_completes_with_an_error_and_its_result_is_a_422(client):
    handle = client.submit(KLING, {"prompt": "A glass city shatters #fail"})
    done, _ = wait_until_completed(handle)
    assert done.error == "The simulated renderer failed halfway through."
    with pytest.raises(fal_client.FalClientHTTPError) as failed:
        handle.get()
    assert failed.value.status_code == 422 and failed.value.message[0]["type"] == "generation_failed"


def test_a_wrong_key_is_refused_with_401(live_server, monkeypatch):
    monkeypatch.setattr(fal_sdk, "QUEUE_URL_FORMAT", f"{live_server.url}/simulator/fal/")
    with pytest.raises(fal_client.FalClientHTTPError) as refused:
        fal_client.SyncClient(key="not-a-key").submit(KLING, {"prompt": "A fox"})
    assert refused.value.status_code == 401
    assert refused.value.message == "No user found for Key ID and Secret"


def test_it_answers_429_when_the_key_has_too_many_requests_in_flight(client, settings, monkeypatch):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    # fal-client retries a 429 by itself, up to 10 times over about a minute; one attempt shows what it got.
    monkeypatch.setattr(fal_sdk, "MAX_ATTEMPTS", 1)
    client.submit(KLING, {"prompt": "A very long take #slow"})
    with pytest.raises(fal_client.FalClientHTTPError) as limited:
        client.submit(KLING, {"prompt": "One more"})
    assert limited.value.status_code == 429
    assert limited.value.response_headers["retry-after"] == "1"


@pytest.mark.parametrize(
    "arguments, loc, kind",
    [
        ({"duration": "5"}, ["body", "prompt"], "missing"),
        ({"prompt": "A fox", "duration": 5}, ["body", "duration"], "enum"),
        ({"prompt": "A fox", "duration": "7"}, ["body", "duration"], "enum"),
        ({"prompt": "A fox", "duration": "five"}, ["body", "duration"], "enum"),
        ({"prompt": "A fox", "aspect_ratio": "4:3"}, ["body", "aspect_ratio"], "enum"),
        ({"prompt": "A fox", "cfg_scale": "high"}, ["body", "cfg_scale"], "less_than_equal"),
        ({"prompt": ["A fox"]}, ["body", "prompt"], "string_type"),
        ({"prompt": "   "}, ["body", "prompt"], "string_too_short"),
        ({"prompt": "A fox", "negative_prompt": 3}, ["body", "negative_prompt"], "string_type"),
    ],
)
def test_bad_arguments_are_a_422_in_fals_validation_shape(client, arguments, loc, kind):
    with pytest.raises(fal_client.FalClientHTTPError) as bad:
        client.submit(KLING, arguments)
    assert bad.value.status_code == 422
    assert (bad.value.message[0]["loc"], bad.value.message[0]["type"]) == (loc, kind)
    assert not Job.objects.exists()


def test_a_body_with_1e400_or_no_json_is_a_422_not_a_500(live_server):
    url = f"{live_server.url}/simulator/fal/{KLING}"
    headers = {"Authorization": f"Key {SIM_KEY}", "Content-Type": "application/json"}
    for body in (
        b'{"prompt": "A fox", "duration": 1e400}',
        b'{"prompt": "A fox", "cfg_scale": 1e400}',
        b"{nope",
        b"[1, 2]",
    ):
        response = httpx.post(url, content=body, headers=headers)
        assert response.status_code == 422, body
        assert isinstance(response.json()["detail"], list)


def test_an_unknown_app_is_a_404(client):
    with pytest.raises(fal_client.FalClientHTTPError) as missing:
        client.submit("fal-ai/no-such-app", {"prompt": "A fox"})
    assert missing.value.status_code == 404


def test_a_queued_request_can_be_cancelled_and_a_finished_one_cannot(client):
    slow = client.submit(KLING, {"prompt": "A very long take #slow"})
    slow.cancel()
    done, _ = wait_until_completed(slow)
    assert done.error
    with pytest.raises(fal_client.FalClientHTTPError) as too_late:
        slow.cancel()
    assert too_late.value.status_code == 400
    assert too_late.value.response.json() == {"status": "ALREADY_COMPLETED"}


def test_a_flaky_request_answers_503_once_then_recovers(client):
    handle = client.submit(KLING, {"prompt": "A windmill in fog #flaky"})
    with pytest.raises(fal_client.FalClientHTTPError) as unavailable:
        handle.status()
    assert unavailable.value.status_code == 503
    assert unavailable.value.error_type == "runner_scheduling_failure"
    assert wait_until_completed(handle)[0].error is None


def test_a_garbage_request_answers_200_with_a_body_that_is_not_json(client):
    handle = client.submit(KLING, {"prompt": "A gateway melts #garbage"})
    with pytest.raises(ValueError):
        handle.status()
    raw = httpx.get(handle.status_url, headers={"Authorization": f"Key {SIM_KEY}"})
    assert raw.status_code == 200 and raw.text.startswith("<html>")
