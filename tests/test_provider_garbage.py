"""Answers of an unexpected shape from any provider are a ProviderError (the job waits or fails with a
reason), never an exception that leaves a job spinning until its deadline."""

import pytest

from generations.jobs.lifecycle import _delivered_seconds
from generations.providers.base import ProviderError, RemoteJob
from generations.providers.gemini_veo.client import parse_operation
from generations.providers.openai_videos.client import parse_video
from generations.providers.replicate.client import parse_prediction
from generations.providers.runway.client import parse_task
from tests.factories import make_dead_backend, make_generation

ODD = [["queued"], {"a": 1}, 5, None, ""]


@pytest.mark.parametrize("status", ODD)
@pytest.mark.parametrize("parse", [parse_video, parse_prediction, parse_task], ids=["openai", "replicate", "runway"])
def test_a_status_of_the_wrong_type_is_a_provider_error(parse, status):
    with pytest.raises(ProviderError):
        parse({"id": "x1", "status": status})


@pytest.mark.parametrize("code", [["13"], {"x": 1}, "13", None])
def test_a_veo_error_code_of_the_wrong_type_still_fails_the_job_with_a_reason(code):
    job = parse_operation(
        {"name": "models/m/operations/op_1", "done": True, "error": {"code": code, "message": "broke"}},
        "models/m/operations/op_1",
    )
    assert job.status == "failed" and job.error_code == "video_generation_failed" and job.error_message == "broke"


@pytest.mark.django_db
@pytest.mark.parametrize("reported, billed", [("8", 8), ("8.0", 8), ("8s", 4), ("", 4), ("1e400", 4), ("-3", 4)])
def test_the_seconds_a_provider_reports_never_block_a_finished_video(alice, reported, billed):
    generation = make_generation(alice, make_dead_backend(), seconds=4)
    assert _delivered_seconds(RemoteJob(id="x", status="completed", seconds=reported), generation) == billed


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["https://cdn:99999/x.mp4", "https://cdn:abc/x.mp4", "https://[::1/x.mp4"])
def test_a_download_link_that_is_not_a_url_is_a_provider_error(url):
    client = make_dead_backend().client()
    with pytest.raises(ProviderError) as raised:
        client.http.request("GET", url)
    assert raised.value.code == "invalid_response" and not raised.value.transient


@pytest.mark.django_db
def test_a_replicate_create_answered_with_garbage_may_have_made_a_prediction(monkeypatch):
    """Replicate answered the create, so a second create could start (and bill) a second prediction."""
    client = make_dead_backend("Replicate", "replicate").client()
    monkeypatch.setattr(client.http, "json", lambda *args, **kwargs: {"id": "p1", "status": "weird"})
    with pytest.raises(ProviderError) as raised:
        client.create(
            prompt="A fox",
            model="kwaivgi/kling-v1.6-standard",
            seconds=5,
            size="1280x720",
            characters=[],
            idempotency_key="k",
        )
    assert raised.value.maybe_sent
