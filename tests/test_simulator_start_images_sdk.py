"""Each provider's official package sends its start (and end) image fields to the simulator as the real API
takes them, the simulator checks them as the real API does, and the video it renders opens on the start image
(and ends on the end image): openai `input_reference`, google-genai `image` + `last_frame`, runwayml
`prompt_image` first/last, fal-client and replicate with Kling's image arguments."""

from __future__ import annotations

import base64
import io
import time

import fal_client
import httpx
import openai
import pytest
import replicate
import runwayml
from fal_client import client as fal_sdk
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from simulator.models import Job
from tests.factories import SIM_KEY
from tests.frames import CLOSE, difference, first_frame, last_frame, picture

pytestmark = pytest.mark.django_db(transaction=True)

START, END = picture(1280, 720, seed=1, kind="JPEG"), picture(1280, 720, seed=2, kind="JPEG")


def data_uri(data: bytes, kind: str = "image/jpeg") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def opens_on(mp4: bytes, image: bytes) -> bool:
    return difference(first_frame(mp4), image) < CLOSE


def ends_on(mp4: bytes, image: bytes) -> bool:
    return difference(last_frame(mp4), image) < CLOSE


def until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not done after {timeout} s")


# --- openai ---------------------------------------------------------------------------------------


def test_openai_input_reference_is_the_first_frame_and_must_be_the_videos_size(sim_openai_url):
    client = openai.OpenAI(base_url=sim_openai_url, api_key=SIM_KEY, max_retries=0)
    video = client.videos.create(prompt="A harbour at dawn", size="1280x720", input_reference=("a.jpg", START))
    assert Job.objects.get(pk=video.id).input_reference == "a.jpg"
    until(lambda: client.videos.retrieve(video.id).status == "completed")
    assert opens_on(client.videos.download_content(video.id).read(), START)

    portrait = picture(720, 1280, kind="JPEG")
    with pytest.raises(openai.BadRequestError) as wrong_size:
        client.videos.create(prompt="A harbour at dawn", size="1280x720", input_reference=("b.jpg", portrait))
    assert wrong_size.value.param == "input_reference"
    assert "must match the requested width and height (1280x720; the image is 720x1280)" in wrong_size.value.message

    by_url = client.videos.create(
        prompt="A harbour at noon", size="720x1280", extra_body={"input_reference": {"image_url": data_uri(portrait)}}
    )
    until(lambda: client.videos.retrieve(by_url.id).status == "completed")
    assert opens_on(client.videos.download_content(by_url.id).read(), portrait)
    assert Job.objects.count() == 2  # the wrong size made no video


# --- google-genai ---------------------------------------------------------------------------------


def test_veo_takes_a_first_frame_and_a_last_frame_as_google_genai_sends_them(live_server):
    client = genai.Client(
        api_key=SIM_KEY,
        http_options=types.HttpOptions(base_url=f"{live_server.url}/simulator/veo", api_version="v1beta"),
    )
    # generate_videos(image=...) and its successor, source=GenerateVideosSource(image=...), both send
    # instances[0].image; the latter, without the deprecation warning.
    operation = client.models.generate_videos(
        model="veo-3.1-generate-preview",
        source=types.GenerateVideosSource(
            prompt="A door opens onto the sea", image=types.Image(image_bytes=START, mime_type="image/jpeg")
        ),
        config=types.GenerateVideosConfig(
            duration_seconds=4,
            aspect_ratio="16:9",
            last_frame=types.Image(image_bytes=END, mime_type="image/jpeg"),
        ),
    )
    job = Job.objects.get()
    assert [kind.split(":")[0] for kind in job.images] == ["image", "lastFrame"]
    done = until(lambda: (op := client.operations.get(operation)).done and op)
    uri = done.result.generated_videos[0].video.uri
    mp4 = httpx.get(uri, headers={"x-goog-api-key": SIM_KEY}).content
    assert opens_on(mp4, START) and ends_on(mp4, END)

    with pytest.raises(genai_errors.ClientError) as alone:  # Veo interpolates: a last frame needs a first
        client.models.generate_videos(
            model="veo-3.1-generate-preview",
            source=types.GenerateVideosSource(prompt="A door"),
            config=types.GenerateVideosConfig(last_frame=types.Image(image_bytes=END, mime_type="image/jpeg")),
        )
    assert alone.value.code == 400 and "last frame needs a first frame" in alone.value.message


# --- runwayml -------------------------------------------------------------------------------------


def test_runway_prompt_image_at_first_and_last_is_where_the_video_opens_and_ends(live_server):
    client = runwayml.RunwayML(api_key=SIM_KEY, base_url=f"{live_server.url}/simulator/runway", max_retries=0)
    created = client.image_to_video.create(
        model="veo3.1",
        prompt_text="A door opens onto the sea",
        prompt_image=[{"uri": data_uri(START), "position": "first"}, {"uri": data_uri(END), "position": "last"}],
        ratio="1280:720",
        duration=4,
    )
    task = until(lambda: (t := client.tasks.retrieve(created.id)).status == "SUCCEEDED" and t)
    mp4 = httpx.get(task.output[0]).content
    assert opens_on(mp4, START) and ends_on(mp4, END)

    with pytest.raises(runwayml.BadRequestError) as no_last:  # gen4.5 takes a first frame only
        client.image_to_video.create(
            model="gen4.5",
            prompt_text="A door",
            prompt_image=[{"uri": data_uri(START), "position": "first"}, {"uri": data_uri(END), "position": "last"}],
            ratio="1280:720",
            duration=5,
        )
    assert no_last.value.body["issues"][0]["path"] == ["promptImage.1.position"]


# --- fal-client -----------------------------------------------------------------------------------


def test_fal_kling_image_to_video_takes_image_url_and_tail_image_url(live_server, monkeypatch):
    monkeypatch.setattr(fal_sdk, "QUEUE_URL_FORMAT", f"{live_server.url}/simulator/fal/")
    client = fal_client.SyncClient(key=SIM_KEY)
    with Image.open(io.BytesIO(START)) as start, Image.open(io.BytesIO(END)) as end:
        arguments = {
            "prompt": "A door opens onto the sea",
            "duration": "5",
            "image_url": fal_client.encode_image(start),
            "tail_image_url": fal_client.encode_image(end),
        }
    handle = client.submit("fal-ai/kling-video/v2.1/standard/image-to-video", arguments)
    until(lambda: isinstance(handle.status(), fal_client.Completed))
    mp4 = httpx.get(handle.get()["video"]["url"]).content
    assert opens_on(mp4, START) and ends_on(mp4, END)
    assert Job.objects.get().size == "1280x720"  # the first frame sets the shape

    with pytest.raises(fal_client.FalClientHTTPError) as missing:  # an image-to-video app needs its image
        client.submit("fal-ai/kling-video/v2.1/standard/image-to-video", {"prompt": "A door", "duration": "5"})
    assert missing.value.status_code == 422 and "image_url" in str(missing.value)


# --- replicate ------------------------------------------------------------------------------------


def test_replicate_kling_takes_start_image_and_end_image_in_pro_mode(live_server):
    client = replicate.Client(api_token=SIM_KEY, base_url=f"{live_server.url}/simulator/replicate")
    inputs = {"prompt": "A door opens onto the sea", "start_image": data_uri(START), "end_image": data_uri(END)}
    with pytest.raises(replicate.exceptions.ReplicateError) as standard:  # end_image needs pro mode
        client.predictions.create(model="kwaivgi/kling-v2.1", input=inputs)
    assert standard.value.status == 422 and "end_image" in standard.value.detail

    prediction = client.predictions.create(model="kwaivgi/kling-v2.1", input={**inputs, "mode": "pro"})
    prediction = until(lambda: prediction.reload() or (prediction.status == "succeeded" and prediction))
    mp4 = httpx.get(prediction.output).content
    assert opens_on(mp4, START) and ends_on(mp4, END)


# --- the aggregator task API (no official package: plain HTTP) ---------------------------------------


def test_the_task_api_takes_an_optional_image_url_as_the_first_frame(sim_task_url):
    import requests

    headers = {"Authorization": f"Bearer {SIM_KEY}"}
    body = {"prompt": "A door opens onto the sea", "duration": 4, "image_url": data_uri(START)}
    task_id = requests.post(f"{sim_task_url}/sora/generate", json=body, headers=headers, timeout=10).json()["task_id"]
    task = until(
        lambda: (t := requests.get(f"{sim_task_url}/sora/tasks/{task_id}", headers=headers).json())["video_url"] and t
    )
    assert opens_on(requests.get(task["video_url"], timeout=10).content, START)

    refused = requests.post(
        f"{sim_task_url}/sora/generate", json={**body, "image_url": "data:image/png;base64,aGVsbG8="}, headers=headers
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_image"
