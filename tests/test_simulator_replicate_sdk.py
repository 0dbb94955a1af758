"""The simulator speaks Replicate's predictions API well enough for the official `replicate` package."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import pytest
import replicate
import requests
from PIL import Image
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput

from simulator.models import Job
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

TEXT_MODEL = "kwaivgi/kling-v1.6-standard"
IMAGE_MODEL = "kwaivgi/kling-v2.1"


@pytest.fixture
def sim_replicate_url(live_server):
    # The SDK's base URL has no /v1: it puts /v1/... in front of every path itself.
    return f"{live_server.url}/simulator/replicate"


@pytest.fixture
def client(sim_replicate_url):
    client = replicate.Client(api_token=SIM_KEY, base_url=sim_replicate_url)
    client.poll_interval = 0.05  # what REPLICATE_POLL_INTERVAL would set
    return client


def a_png(size=(64, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def probe(tmp_path: Path, mp4: bytes) -> str:
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4)
    return subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    ).stderr


def test_a_prediction_starts_runs_and_succeeds_with_a_playable_mp4(client, tmp_path):
    prediction = client.predictions.create(
        model=TEXT_MODEL, input={"prompt": "A paper boat on a rainy street", "duration": 5, "aspect_ratio": "9:16"}
    )
    assert prediction.status == "starting"
    assert prediction.model == TEXT_MODEL and len(prediction.version) == 64
    assert prediction.input == {
        "prompt": "A paper boat on a rainy street",
        "duration": 5,
        "aspect_ratio": "9:16",
        "cfg_scale": 0.5,
    }
    assert prediction.output is None and prediction.error is None
    assert prediction.urls["get"].endswith(f"/v1/predictions/{prediction.id}")

    seen = set()
    while prediction.status not in ("succeeded", "failed", "canceled"):
        time.sleep(client.poll_interval)
        prediction.reload()
        seen.add(prediction.status)
        if prediction.status == "processing" and prediction.progress:
            assert 0 <= prediction.progress.percentage < 1  # parsed by the SDK from the logs
    assert prediction.status == "succeeded", prediction.error
    assert "processing" in seen
    assert prediction.progress.percentage == 1.0
    assert prediction.completed_at >= prediction.started_at >= prediction.created_at
    assert prediction.metrics["predict_time"] > 0

    # The SDK wraps only https:// outputs in FileOutput; the local simulator serves http://.
    mp4 = FileOutput(prediction.output, client).read()
    assert mp4[4:8] == b"ftyp"
    info = probe(tmp_path, mp4)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info)
    assert duration and float(duration.group(3)) == pytest.approx(5.0, abs=0.2), info
    assert "Video: h264" in info and "180x320" in info  # portrait, scaled down from 720x1280


def test_run_holds_the_create_with_prefer_wait_and_returns_the_output(client):
    output = client.run(TEXT_MODEL, input={"prompt": "A kite over green hills", "duration": 10})
    assert isinstance(output, str) and "/simulator/replicate/delivery/" in output
    assert FileOutput(output, client).read()[4:8] == b"ftyp"
    assert Job.objects.get().seconds == 10


def test_an_image_to_video_model_needs_its_start_image(client):
    with pytest.raises(ReplicateError) as refused:
        client.predictions.create(model=IMAGE_MODEL, input={"prompt": "Mossy waves", "duration": 5})
    assert refused.value.status == 422
    assert refused.value.title == "Input validation failed"
    assert "start_image is required" in refused.value.detail

    png = a_png((64, 36))
    start = f"data:image/png;base64,{base64.b64encode(png).decode()}"
    prediction = client.predictions.create(model=IMAGE_MODEL, input={"prompt": "Mossy waves", "start_image": start})
    prediction.wait()
    assert prediction.status == "succeeded"
    job = Job.objects.get(pk=prediction.id)
    assert job.images == [f"start_image: sha256:{hashlib.sha256(png).hexdigest()[:16]}"]
    assert job.size == "1280x720"  # the start image is landscape
    assert job.request["input"]["mode"] == "standard"


def test_a_file_input_goes_as_a_data_uri_with_the_base64_strategy(client):
    # predictions.create(model=...) drops file_encoding_strategy; models.predictions.create keeps it.
    prediction = client.models.predictions.create(
        model=IMAGE_MODEL,
        input={"prompt": "A tall still", "start_image": io.BytesIO(a_png((36, 64)))},
        file_encoding_strategy="base64",
    )
    prediction.wait()
    assert prediction.status == "succeeded"
    assert Job.objects.get(pk=prediction.id).size == "720x1280"


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"input": {"duration": 5}}', "input"),
        (b'{"input": {"prompt": "x", "duration": 7}}', "input.duration"),
        (b'{"input": {"prompt": "x", "duration": "5"}}', "input.duration"),
        (b'{"input": {"prompt": "x", "duration": 1e400}}', "input.duration"),
        (b'{"input": {"prompt": "x", "duration": true}}', "input.duration"),
        (b'{"input": {"prompt": "x", "aspect_ratio": "4:3"}}', "input.aspect_ratio"),
        (b'{"input": {"prompt": "x", "cfg_scale": "high"}}', "input.cfg_scale"),
        (b'{"input": {"prompt": "x", "start_image": "data:image/png;base64,bm90IGFuIGltYWdl"}}', "input.start_image"),
        (b'{"input": "A fox"}', "input"),
    ],
)
def test_bad_input_is_a_422_problem_never_a_500(sim_replicate_url, body, field):
    response = requests.post(
        f"{sim_replicate_url}/v1/models/{TEXT_MODEL}/predictions",
        data=body,
        headers={"Authorization": f"Bearer {SIM_KEY}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Input validation failed" and problem["status"] == 422
    assert problem["invalid_fields"][0]["field"] == field
    assert not Job.objects.exists()


def test_a_body_that_is_not_json_and_an_unknown_model_are_problems_too(client, sim_replicate_url):
    response = requests.post(
        f"{sim_replicate_url}/v1/models/{TEXT_MODEL}/predictions",
        data=b"{nope",
        headers={"Authorization": f"Bearer {SIM_KEY}"},
        timeout=5,
    )
    assert (response.status_code, response.json()["status"]) == (400, 400)
    with pytest.raises(ReplicateError) as missing:
        client.predictions.create(model="someone/no-such-model", input={"prompt": "x"})
    assert (missing.value.status, missing.value.title) == (404, "Not found")
    with pytest.raises(ReplicateError) as unknown:
        client.predictions.get("pred_doesnotexist")
    assert unknown.value.status == 404


def test_a_moderated_prompt_fails_with_the_providers_reason(client):
    prediction = client.predictions.create(model=TEXT_MODEL, input={"prompt": "Something nasty #moderation"})
    assert prediction.status == "starting"  # accepted first, refused by the model's safety filter
    prediction.wait()
    assert prediction.status == "failed"
    assert "flagged as sensitive" in prediction.error and "E005" in prediction.error
    with pytest.raises(ModelError) as refused:
        client.run(TEXT_MODEL, input={"prompt": "Something nasty again #moderation"})
    assert "flagged as sensitive" in str(refused.value)


def test_a_failing_prompt_fails_halfway(client):
    prediction = client.predictions.create(model=TEXT_MODEL, input={"prompt": "A glass city shatters #fail"})
    prediction.wait()
    assert prediction.status == "failed"
    assert prediction.error == "The simulated renderer failed halfway through."
    assert 0 < prediction.progress.percentage < 1
    assert prediction.output is None


def test_a_wrong_key_is_refused_and_the_old_token_scheme_is_accepted(sim_replicate_url):
    intruder = replicate.Client(api_token="r8_not-a-key", base_url=sim_replicate_url)
    with pytest.raises(ReplicateError) as refused:
        intruder.predictions.create(model=TEXT_MODEL, input={"prompt": "A fox"})
    assert (refused.value.status, refused.value.title) == (401, "Unauthenticated")
    assert "r8_not-a-key" not in refused.value.detail

    response = requests.post(
        f"{sim_replicate_url}/v1/models/{TEXT_MODEL}/predictions",
        json={"input": {"prompt": "A fox"}},
        headers={"Authorization": f"Token {SIM_KEY}"},
        timeout=5,
    )
    assert response.status_code == 201 and response.json()["status"] == "starting"


def test_too_many_running_predictions_get_429_with_retry_after(client, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client.predictions.create(model=TEXT_MODEL, input={"prompt": "A very long take #slow"})
    with pytest.raises(ReplicateError) as throttled:  # the SDK never retries a POST
        client.predictions.create(model=TEXT_MODEL, input={"prompt": "One more"})
    assert (throttled.value.status, throttled.value.title) == (429, "Too Many Requests")


def test_a_prediction_can_be_canceled_and_predictions_are_listed_newest_first(client, settings):
    first = client.predictions.create(model=TEXT_MODEL, input={"prompt": "A lighthouse at dusk"})
    slow = client.predictions.create(model=TEXT_MODEL, input={"prompt": "A lighthouse, forever #slow"})
    canceled = client.predictions.cancel(slow.id)
    assert canceled.status == "canceled" and canceled.completed_at is not None
    assert client.predictions.get(slow.id).status == "canceled"
    first.wait()
    assert client.predictions.cancel(first.id).status == "succeeded"  # an ended prediction stays as it is

    page = client.predictions.list()
    assert [p.id for p in page.results] == [slow.id, first.id]
    assert page.next is None
    assert page.results[1].input["prompt"] == "A lighthouse at dusk"


def test_a_flaky_poll_is_retried_by_the_sdk_itself(client):
    prediction = client.predictions.create(model=TEXT_MODEL, input={"prompt": "A windmill in fog #flaky"})
    assert client.predictions.get(prediction.id).id == prediction.id  # its transport retried the 503
    assert Job.objects.get(pk=prediction.id).flaky_pending is False


def test_a_garbage_answer_is_not_json(client):
    prediction = client.predictions.create(model=TEXT_MODEL, input={"prompt": "A gateway melts #garbage"})
    with pytest.raises(ValueError):
        client.predictions.get(prediction.id)


def test_an_output_link_is_signed_and_needs_no_key(client):
    prediction = client.predictions.create(model=TEXT_MODEL, input={"prompt": "A snail"})
    prediction.wait()
    assert requests.get(prediction.output, timeout=5).content[4:8] == b"ftyp"
    tampered = re.sub(r"signature=\w+", "signature=" + "0" * 64, prediction.output)
    assert requests.get(tampered, timeout=5).status_code == 403
