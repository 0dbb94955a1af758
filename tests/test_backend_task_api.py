"""The task_api client against the simulator over real HTTP, and its status normaliser."""

import io
import time

import pytest
import requests

from generations.providers.base import ProviderError
from generations.providers.task_api.client import normalise_status

pytestmark = pytest.mark.django_db(transaction=True)


def finish(client, job_id):
    seen = set()
    for _ in range(200):
        job = client.retrieve(job_id)
        seen.add(job.raw["status"])
        if job.status in ("completed", "failed"):
            return job, seen
        time.sleep(0.03)
    raise AssertionError("never finished")


@pytest.mark.parametrize(
    "word,expected",
    [
        ("queued", "queued"),
        ("pending", "queued"),
        ("processing", "in_progress"),
        ("in_progress", "in_progress"),
        ("completed", "completed"),
        ("succeeded", "completed"),
        ("SUCCESS", "completed"),
        ("failed", "failed"),
        ("error", "failed"),
    ],
)
def test_status_synonyms_are_normalised(word, expected):
    assert normalise_status(word) == expected


def test_an_unknown_status_is_a_bad_answer_not_a_guess():
    with pytest.raises(ProviderError):
        normalise_status("teleported")


def test_it_generates_and_downloads_a_task(aggregator):
    client = aggregator.client()
    job = client.create(
        prompt="A lantern", model="sora-2", seconds="10", size="720x1280", characters=[], idempotency_key="t-1"
    )
    assert job.id.startswith("task_")
    done, seen = finish(client, job.id)
    assert done.status == "completed" and done.video_url.startswith("http")
    video = io.BytesIO()
    client.download(done, "video", video)
    assert video.getvalue()[4:8] == b"ftyp"


def test_a_failed_task_carries_the_providers_reason(aggregator):
    client = aggregator.client()
    job = client.create(
        prompt="A storm #fail", model="sora-2", seconds="10", size="720x1280", characters=[], idempotency_key="t-fail"
    )
    done, _ = finish(client, job.id)
    assert done.status == "failed" and "halfway" in done.error_message


def test_characters_from_a_url_and_extracted_from_a_task(aggregator):
    client = aggregator.client()
    job = client.create(
        prompt="Source", model="sora-2", seconds="10", size="720x1280", characters=[], idempotency_key="t-src"
    )
    done, _ = finish(client, job.id)

    from_url = client.create_character(name="Kite", description="a red kite", clip=None, clip_url=done.video_url)
    extracted = client.extract_character(done.id, "Kite again")
    assert from_url.startswith("char_") and extracted.startswith("char_") and from_url != extracted

    # The character is used as @char_id inside the prompt.
    client.create(
        prompt=f"@{from_url} flies",
        model="sora-2",
        seconds="10",
        size="720x1280",
        characters=[],
        idempotency_key="t-use",
    )
    with pytest.raises(ProviderError) as exc:
        client.create(
            prompt="@char_doesnotexist flies",
            model="sora-2",
            seconds="10",
            size="720x1280",
            characters=[],
            idempotency_key="t-bad",
        )
    assert not exc.value.transient


def test_the_key_is_never_sent_to_another_host(aggregator, monkeypatch):
    """A video link on another origin (a CDN) gets no Authorization header; the backend's own does."""
    sent = []
    real_send = requests.Session.send

    def spy(session, request, **kwargs):
        sent.append(request)
        return real_send(session, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", spy)
    client = aggregator.client()
    with pytest.raises(ProviderError):
        client.http.download("http://127.0.0.2:9/video.mp4", io.BytesIO())  # another origin, nothing there
    with pytest.raises(ProviderError):
        client.retrieve("task_nope")

    cdn, own = sent
    assert "Authorization" not in cdn.headers
    assert own.headers["Authorization"] == "Bearer sim-local-key"
