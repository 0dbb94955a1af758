"""The simulator speaks Veo's Gemini API well enough for Google's official `google-genai` package (2.x)."""

from __future__ import annotations

import io
import re
import time

import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from simulator.models import VEO, Job
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "veo-3.1-generate-preview"


def sdk(live_server, key: str = SIM_KEY) -> genai.Client:
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(base_url=f"{live_server.url}/simulator/veo", api_version="v1beta"),
    )


@pytest.fixture
def client(live_server):
    return sdk(live_server)


def wait_until_done(client: genai.Client, operation, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation = client.operations.get(operation)
        if operation.done:
            return operation
        time.sleep(0.05)
    raise AssertionError(f"{operation.name} still running after {timeout}s")


def file_name(uri: str) -> str:
    """The SDK's own reading of a download URI (`t_file_name`), which it applies only to https:// URIs:
    the run of [a-z0-9] after "files/". Passed as "files/<id>", the SDK builds the same request itself."""
    return "files/" + re.match(r"[a-z0-9]+", uri.split("files/")[1]).group(0)


def a_png(colour=(200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_it_makes_a_video_the_sdk_polls_and_downloads(client):
    operation = client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(prompt="A paper boat drifts down a rainy street"),
        config=types.GenerateVideosConfig(duration_seconds=6, aspect_ratio="9:16", resolution="1080p"),
    )
    assert re.fullmatch(rf"models/{MODEL}/operations/op_[0-9a-f]+", operation.name)
    assert not operation.done  # an unfinished operation has no `done` at all

    done = wait_until_done(client, operation)
    assert done.error is None
    [generated] = done.result.generated_videos
    assert generated.video.uri.endswith(":download?alt=media")

    mp4 = client.files.download(file=file_name(generated.video.uri))
    assert mp4[4:8] == b"ftyp"

    job = Job.objects.get(protocol=VEO)
    assert (job.seconds, job.size, job.model) == (6, "1080x1920", MODEL)
    assert job.request == {"durationSeconds": 6, "aspectRatio": "9:16", "resolution": "1080p"}


def test_reference_images_reach_the_simulator(client):
    import hashlib

    stills = [a_png((10, 200, 10)), a_png((10, 10, 200))]
    client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(prompt="Mossy waves hello"),
        config=types.GenerateVideosConfig(
            reference_images=[
                types.VideoGenerationReferenceImage(
                    image=types.Image(image_bytes=still, mime_type="image/png"), reference_type="ASSET"
                )
                for still in stills
            ]
        ),
    )
    job = Job.objects.get(protocol=VEO)
    assert job.images == [f"asset:image/png:{hashlib.sha256(still).hexdigest()[:16]}" for still in stills]


def test_the_sdk_cannot_download_an_http_uri_by_itself(client):
    """STACK-FACTS: `files.download` reads a file name out of https:// URIs only; an http:// one is used
    as the name whole, and the request it builds goes nowhere."""
    done = wait_until_done(client, client.models.generate_videos(model=MODEL, source={"prompt": "A red kite"}))
    with pytest.raises(errors.ClientError) as lost:
        client.files.download(file=done.result.generated_videos[0].video)
    assert lost.value.code == 404


def test_a_safety_refusal_is_a_done_operation_without_videos(client):
    done = wait_until_done(client, client.models.generate_videos(model=MODEL, source={"prompt": "nasty #moderation"}))
    assert done.error is None
    assert done.result.generated_videos is None
    assert done.result.rai_media_filtered_count == 1
    assert "violate our policies" in done.result.rai_media_filtered_reasons[0]


def test_a_failing_prompt_ends_with_an_operation_error(client):
    done = wait_until_done(client, client.models.generate_videos(model=MODEL, source={"prompt": "It breaks #fail"}))
    assert done.error == {"code": 13, "message": "The simulated renderer failed halfway through."}
    assert done.result is None


def test_a_wrong_key_is_refused_as_the_gemini_api_does(live_server):
    intruder = sdk(live_server, key="not-a-key")  # held: a Client closes its connections when collected
    with pytest.raises(errors.ClientError) as refused:
        intruder.models.generate_videos(model=MODEL, source={"prompt": "A fox"})
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert refused.value.message == "API key not valid. Please pass a valid API key."
    assert refused.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_too_many_videos_in_flight_is_a_429(client, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client.models.generate_videos(model=MODEL, source={"prompt": "A very long take #slow"})
    with pytest.raises(errors.ClientError) as limited:
        client.models.generate_videos(model=MODEL, source={"prompt": "One more"})
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert limited.value.response.headers["Retry-After"] == "1"
    assert limited.value.details["error"]["details"][0]["retryDelay"] == "1s"


def test_unsupported_parameters_are_invalid_arguments(client):
    for config in [{"duration_seconds": 5}, {"aspect_ratio": "1:1"}, {"resolution": "4k"}]:
        with pytest.raises(errors.ClientError) as refused:
            client.models.generate_videos(model=MODEL, source={"prompt": "A fox"}, config=config)
        assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    with pytest.raises(errors.ClientError) as unknown:
        client.models.generate_videos(model="sora-2", source={"prompt": "A fox"})
    assert unknown.value.code == 404
    assert not Job.objects.filter(protocol=VEO).exists()


def test_a_flaky_operation_answers_503_once_then_recovers(client):
    operation = client.models.generate_videos(model=MODEL, source={"prompt": "A windmill in fog #flaky"})
    with pytest.raises(errors.ServerError) as unavailable:
        client.operations.get(operation)
    assert (unavailable.value.code, unavailable.value.status) == (503, "UNAVAILABLE")
    assert wait_until_done(client, operation).error is None


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"instances": {"prompt": "x"}}',
        '{"instances": [{"prompt": ""}]}',
        '{"instances": [{}]}',
        '{"instances": [{"prompt": "x"}], "parameters": []}',
        '{"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": "eight"}}',
        '{"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 1e400}}',
        '{"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": true}}',
        '{"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": "8s"}}',
        '{"instances": [{"prompt": "x"}], "parameters": {"aspectRatio": 16}}',
        '{"instances": [{"prompt": "x", "image": {"bytesBase64Encoded": "%%%"}}]}',
        '{"instances": [{"prompt": "x", "referenceImages": [1, 2, 3, 4]}]}',
    ],
)
def test_bad_input_is_a_400_in_googles_error_shape(live_server, body):
    import requests

    response = requests.post(
        f"{live_server.url}/simulator/veo/v1beta/models/{MODEL}:predictLongRunning",
        data=body,
        headers={"x-goog-api-key": SIM_KEY, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert not Job.objects.filter(protocol=VEO).exists()
