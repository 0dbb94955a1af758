"""The simulator speaks the OpenAI Videos API well enough for the official `openai` package."""

from __future__ import annotations

import io
import re
import subprocess
import time
from pathlib import Path

import imageio_ffmpeg
import openai
import pytest
from PIL import Image

from simulator import render
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(sim_openai_url):
    return openai.OpenAI(base_url=sim_openai_url, api_key=SIM_KEY, max_retries=0)


def wait_until_done(client: openai.OpenAI, video_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.videos.retrieve(video_id)
        if video.status in ("completed", "failed"):
            return video
        time.sleep(0.05)
    raise AssertionError(f"{video_id} still {video.status} after {timeout}s")


def a_clip() -> bytes:
    return render.render_mp4(render.look_for("a mossy rock golem", "1280x720", "clip"), 2)


def a_png(width: int = 720, height: int = 1280) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_it_creates_a_video_that_completes_with_a_playable_mp4(client, tmp_path: Path):
    raw = client.videos.with_raw_response.create(prompt="A paper boat drifts down a rainy street", size="1280x720")
    created = raw.parse()
    assert created.id.startswith("video_")
    assert created.object == "video"
    assert (created.model, created.seconds, created.size) == ("sora-2", "4", "1280x720")
    assert created.status in ("queued", "in_progress")
    assert int(raw.headers["openai-poll-after-ms"]) >= 100

    done = wait_until_done(client, created.id)
    assert done.status == "completed"
    assert done.progress == 100
    assert done.error is None
    assert done.completed_at >= done.created_at
    assert done.expires_at - done.completed_at == 3600

    mp4 = client.videos.download_content(created.id).content
    assert mp4[4:8] == b"ftyp"
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4)
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", probe.stderr)
    assert duration, probe.stderr
    assert float(duration.group(3)) == pytest.approx(4.0, abs=0.2)
    assert "Video: h264" in probe.stderr
    assert "yuv420p" in probe.stderr
    assert "320x18" in probe.stderr  # landscape, scaled down from 1280x720

    thumbnail = client.videos.download_content(created.id, variant="thumbnail").content
    assert thumbnail[:4] == b"RIFF" and thumbnail[8:12] == b"WEBP"
    spritesheet = client.videos.download_content(created.id, variant="spritesheet").content
    assert spritesheet[:2] == b"\xff\xd8"


def test_different_prompts_render_different_videos(client):
    first = client.videos.create(prompt="A red kite over green hills")
    second = client.videos.create(prompt="A blue whale under the ice")
    wait_until_done(client, first.id)
    wait_until_done(client, second.id)
    assert client.videos.download_content(first.id).content != client.videos.download_content(second.id).content


def test_it_validates_parameters_like_the_real_api(client):
    with pytest.raises(openai.BadRequestError) as too_long:
        client.videos.create(prompt="A fox", seconds="5")
    assert too_long.value.param == "seconds"
    assert too_long.value.type == "invalid_request_error"

    with pytest.raises(openai.BadRequestError) as full_hd:
        client.videos.create(prompt="A fox", size="1920x1080")
    assert full_hd.value.param == "size"
    assert client.videos.create(prompt="A fox", model="sora-2-pro", size="1920x1080").size == "1920x1080"

    with pytest.raises(openai.BadRequestError) as not_an_image:
        client.videos.create(prompt="A fox", input_reference=("ref.png", b"not an image", "image/png"))
    assert not_an_image.value.param == "input_reference"
    with pytest.raises(openai.BadRequestError) as wrong_size:  # an input_reference must be the video's size
        client.videos.create(prompt="A fox", input_reference=("ref.png", a_png(64, 36), "image/png"))
    assert wrong_size.value.param == "input_reference"
    assert "must match the requested width and height" in wrong_size.value.message
    assert client.videos.create(prompt="A fox", input_reference=("ref.png", a_png(), "image/png")).status in (
        "queued",
        "in_progress",
    )  # a loaded machine may be slower than the job


def test_it_creates_characters_and_uses_them_in_a_video(client):
    character = client.videos.create_character(name="Mossy", video=("mossy.mp4", a_clip(), "video/mp4"))
    assert character.id.startswith("char_")
    assert character.name == "Mossy"
    assert character.created_at > 0
    assert client.videos.get_character(character.id).name == "Mossy"

    video = client.videos.create(prompt="Mossy waves hello", extra_body={"characters": [{"id": character.id}]})
    assert wait_until_done(client, video.id).status == "completed"

    with pytest.raises(openai.BadRequestError) as unknown:
        client.videos.create(prompt="Nobody waves", extra_body={"characters": [{"id": "char_doesnotexist"}]})
    assert (unknown.value.param, unknown.value.code) == ("characters", "character_not_found")

    with pytest.raises(openai.BadRequestError) as too_many:
        client.videos.create(prompt="A crowd", extra_body={"characters": [{"id": character.id}] * 3})
    assert too_many.value.param == "characters"


def test_it_rejects_a_character_clip_that_is_not_a_video(client):
    with pytest.raises(openai.BadRequestError) as empty:
        client.videos.create_character(name="Ghost", video=("ghost.mp4", b"", "video/mp4"))
    assert empty.value.param == "video"
    with pytest.raises(openai.BadRequestError) as text:
        client.videos.create_character(name="Ghost", video=("ghost.mp4", b"hello, not a video at all", "video/mp4"))
    assert text.value.param == "video"
    with pytest.raises(openai.NotFoundError):
        client.videos.get_character("char_doesnotexist")


def test_it_lists_remixes_and_deletes_videos(client):
    first = client.videos.create(prompt="A lighthouse at dusk")
    second = client.videos.create(prompt="A lighthouse at dawn")
    wait_until_done(client, first.id)
    wait_until_done(client, second.id)

    page = client.videos.list(limit=1)
    assert [video.id for video in page.data] == [second.id]
    assert page.has_more is True
    assert [video.id for video in client.videos.list(limit=1, after=second.id).data] == [first.id]
    assert [video.id for video in client.videos.list(order="asc")] == [first.id, second.id]

    remixed = client.videos.remix(first.id, prompt="The same lighthouse, in a storm")
    assert remixed.remixed_from_video_id == first.id
    assert (remixed.seconds, remixed.size) == (first.seconds, first.size)
    assert wait_until_done(client, remixed.id).status == "completed"

    deleted = client.videos.delete(first.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (first.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(first.id)


def test_a_failing_prompt_fails_halfway_with_an_error(client):
    video = client.videos.create(prompt="A glass city shatters #fail")
    done = wait_until_done(client, video.id)
    assert done.status == "failed"
    assert 0 < done.progress < 100
    assert done.error.code == "video_generation_failed"
    assert done.error.message == "The simulated renderer failed halfway through."
    with pytest.raises(openai.BadRequestError) as not_ready:
        client.videos.download_content(video.id)
    assert not_ready.value.code == "video_not_ready"


def test_a_moderated_prompt_is_refused_at_create(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="Something nasty #moderation")
    assert refused.value.code == "moderation_blocked"
    assert client.videos.list().data == []


def test_a_wrong_key_is_refused(sim_openai_url):
    intruder = openai.OpenAI(base_url=sim_openai_url, api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        intruder.videos.create(prompt="A fox")
    assert refused.value.code == "invalid_api_key"


def test_it_answers_429_when_the_key_has_too_many_jobs_in_flight(client, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    client.videos.create(prompt="A very long take #slow")
    with pytest.raises(openai.RateLimitError) as limited:
        client.videos.create(prompt="One more")
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["Retry-After"] == "1"


def test_an_idempotency_key_returns_the_same_job(client):
    first = client.videos.create(prompt="A snail races a leaf", extra_headers={"Idempotency-Key": "scene-7-try-1"})
    again = client.videos.create(prompt="A snail races a leaf", extra_headers={"Idempotency-Key": "scene-7-try-1"})
    other = client.videos.create(prompt="A snail races a leaf", extra_headers={"Idempotency-Key": "scene-7-try-2"})
    assert again.id == first.id
    assert other.id != first.id


def test_a_flaky_job_answers_503_once_then_recovers(client):
    video = client.videos.create(prompt="A windmill in fog #flaky")
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.videos.retrieve(video.id)
    assert unavailable.value.status_code == 503
    assert wait_until_done(client, video.id).status == "completed"


def test_a_garbage_job_answers_200_with_a_body_that_is_not_json(client):
    video = client.videos.create(prompt="A gateway melts #garbage")
    raw = client.videos.with_raw_response.retrieve(video.id)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/html")
    assert raw.text.startswith("<html>")
