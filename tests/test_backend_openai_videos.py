"""The openai_videos client against the simulator over real HTTP."""

import io

import pytest

from generations.providers.base import ProviderError
from generations.providers.openai_videos.client import parse_video

pytestmark = pytest.mark.django_db(transaction=True)


def finish(client, job):
    import time

    for _ in range(200):
        job = client.retrieve(job.id)
        if job.status in ("completed", "failed"):
            return job
        time.sleep(0.03)
    raise AssertionError("never finished")


def test_it_creates_polls_and_downloads_a_video(official):
    client = official.client()
    job = client.create(
        prompt="A red kite", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="k-1"
    )
    assert job.id.startswith("video_") and job.status == "queued"

    running = client.retrieve(job.id)
    assert running.poll_after is not None  # the openai-poll-after-ms hint is read

    done = finish(client, job)
    assert done.status == "completed" and done.progress == 100 and done.seconds == "4"
    video, thumb = io.BytesIO(), io.BytesIO()
    client.download(done, "video", video)
    client.download(done, "thumbnail", thumb)
    assert video.getvalue()[4:8] == b"ftyp"
    assert thumb.getvalue()[:4] == b"RIFF"  # webp


def test_the_same_idempotency_key_returns_the_same_job(official):
    client = official.client()
    a = client.create(
        prompt="Once", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="same"
    )
    b = client.create(
        prompt="Once", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="same"
    )
    assert a.id == b.id


def test_a_character_made_from_a_clip_can_be_sent_with_a_video(official):
    client = official.client()
    done = finish(
        client,
        client.create(
            prompt="Clip", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="clip"
        ),
    )
    clip = io.BytesIO()
    client.download(done, "video", clip)
    clip.seek(0)
    char_id = client.create_character(name="Mossy", description="", clip=clip, clip_url="")
    assert char_id.startswith("char_")

    job = client.create(
        prompt="Mossy waves",
        model="sora-2",
        seconds="4",
        size="720x1280",
        characters=[char_id],
        idempotency_key="with-char",
    )
    assert job.raw["prompt"] == "Mossy waves"


def test_a_moderated_prompt_is_a_permanent_error(official):
    with pytest.raises(ProviderError) as exc:
        official.client().create(
            prompt="bad #moderation", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="mod"
        )
    assert exc.value.code == "moderation_blocked"
    assert not exc.value.transient and not exc.value.maybe_sent


def test_a_wrong_key_is_a_permanent_error_that_never_shows_the_key(official):
    official.api_key = "sk-wrong-secret-123"
    official.save()
    with pytest.raises(ProviderError) as exc:
        official.client().retrieve("video_nope")
    assert exc.value.status == 401 and not exc.value.transient
    assert "sk-wrong-secret-123" not in str(exc.value)


def test_429_is_transient_and_carries_retry_after(official, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    settings.SIMULATOR_SPEED = 1
    client = official.client()
    client.create(prompt="first", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="a")
    with pytest.raises(ProviderError) as exc:
        client.create(prompt="second", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="b")
    assert exc.value.rate_limited and exc.value.transient and exc.value.retry_after >= 1
    assert not exc.value.maybe_sent


def test_an_answer_that_is_not_json_is_transient(official):
    client = official.client()
    job = client.create(
        prompt="x #garbage", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="g"
    )
    with pytest.raises(ProviderError) as exc:
        client.retrieve(job.id)
    assert exc.value.code == "invalid_response" and exc.value.transient


def test_an_object_that_is_not_a_video_is_rejected():
    with pytest.raises(ProviderError):
        parse_video({"id": "video_1", "status": "exploded"})
    with pytest.raises(ProviderError):
        parse_video({"status": "queued"})


def test_nothing_listening_is_transient_and_certainly_not_sent(official):
    official.base_url = "http://127.0.0.1:9/v1"
    with pytest.raises(ProviderError) as exc:
        official.client().create(
            prompt="x", model="sora-2", seconds="4", size="720x1280", characters=[], idempotency_key="n"
        )
    assert exc.value.transient and not exc.value.maybe_sent
