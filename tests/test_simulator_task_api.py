"""The simulator's task_api protocol, driven over real HTTP with `requests`."""

from __future__ import annotations

import time

import pytest
import requests

from simulator import signing
from simulator.task_views import STATUS_VOCABULARIES, vocabulary_for
from tests.factories import SIM_KEY
from tests.listener import Listener

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = {"Authorization": f"Bearer {SIM_KEY}"}
SUCCESS_WORDS = {"completed", "succeeded"}
FAILURE_WORDS = {"failed", "error"}


def generate(base: str, prompt: str, duration: int = 4, headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{base}/sora/generate",
        json={"prompt": prompt, "duration": duration},
        headers={**AUTH, **(headers or {})},
        timeout=10,
    )


def poll_until_done(base: str, task_id: str, timeout: float = 10.0) -> tuple[dict, list[str]]:
    """The final task body and every status word seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{base}/sora/tasks/{task_id}", headers=AUTH, timeout=10).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in SUCCESS_WORDS | FAILURE_WORDS:
            return body, seen
        time.sleep(0.02)
    raise AssertionError(f"{task_id} still {seen[-1]} after {timeout}s")


def completed_task(base: str, prompt: str = "A tin robot sweeps a moonlit street") -> dict:
    task_id = generate(base, prompt).json()["task_id"]
    body, _ = poll_until_done(base, task_id)
    assert body["status"] in SUCCESS_WORDS
    return body


def test_it_generates_a_task_that_completes_with_a_downloadable_mp4(sim_task_url, live_server):
    started = generate(sim_task_url, "A tin robot sweeps a moonlit street", duration=5)
    assert started.status_code == 200
    task_id = started.json()["task_id"]
    assert task_id.startswith("task_")

    body, seen = poll_until_done(sim_task_url, task_id)
    vocabulary = vocabulary_for(task_id)
    assert set(seen) <= set(vocabulary.values())
    assert body["status"] == vocabulary["completed"]
    assert body["progress"] == 100
    assert body["error"] is None
    assert body["video_url"].startswith(f"{live_server.url}/simulator/task/v1/files/{task_id}.mp4?")

    # The signed link is the credential: no Authorization header, like a provider's CDN URL.
    video = requests.get(body["video_url"], timeout=10)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    thumbnail = requests.get(body["thumbnail_url"], timeout=10)
    assert thumbnail.headers["Content-Type"] == "image/webp"


def test_every_status_word_is_one_a_client_must_normalise():
    words = {word for vocabulary in STATUS_VOCABULARIES for word in vocabulary.values()}
    assert words == {"queued", "pending", "processing", "in_progress", "completed", "succeeded", "failed", "error"}
    # The vocabulary is a pure function of the task id, so it never changes while polling.
    assert vocabulary_for("task_abc") is vocabulary_for("task_abc")
    picked = {id(vocabulary_for(f"task_{n:04x}")) for n in range(64)}
    assert len(picked) == len(STATUS_VOCABULARIES)


def test_a_tampered_or_expired_link_is_refused(sim_task_url, live_server):
    body = completed_task(sim_task_url)
    tampered = body["video_url"].replace("signature=", "signature=0")
    assert requests.get(tampered, timeout=10).status_code == 403

    task_id = body["task_id"]
    past = int(time.time()) - 5
    expired = (
        f"{live_server.url}/simulator/task/v1/files/{task_id}.mp4"
        f"?expires={past}&signature={signing.signature(task_id, 'mp4', past)}"
    )
    refused = requests.get(expired, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "link_expired"


def test_it_creates_a_character_from_a_video_url_and_uses_it(sim_task_url):
    source = completed_task(sim_task_url, "A clay owl blinks")
    created = requests.post(
        f"{sim_task_url}/sora/characters",
        json={"video_url": source["video_url"], "name": "Olive", "description": "a clay owl"},
        headers=AUTH,
        timeout=20,
    )
    assert created.status_code == 200, created.text
    character_id = created.json()["character_id"]
    assert character_id.startswith("char_")

    listed = requests.get(f"{sim_task_url}/sora/characters", headers=AUTH, timeout=10).json()["characters"]
    assert [(c["character_id"], c["name"], c["description"]) for c in listed] == [(character_id, "Olive", "a clay owl")]
    assert listed[0]["created_at"] > 0

    scene = generate(sim_task_url, f"@{character_id} flies over a frozen lake")
    assert scene.status_code == 200
    assert poll_until_done(sim_task_url, scene.json()["task_id"])[0]["status"] in SUCCESS_WORDS


def test_a_character_url_that_does_not_serve_a_clip_is_refused(sim_task_url, live_server):
    refused = requests.post(
        f"{sim_task_url}/sora/characters",
        json={"video_url": f"{live_server.url}/simulator/task/v1/files/task_nope.mp4", "name": "Nobody"},
        headers=AUTH,
        timeout=20,
    )
    assert refused.status_code == 400
    assert "HTTP 403" in refused.json()["error"]["message"]


def create_character(base: str, video_url: str) -> requests.Response:
    return requests.post(
        f"{base}/sora/characters", json={"video_url": video_url, "name": "Nosy"}, headers=AUTH, timeout=20
    )


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.close()


def test_the_simulator_fetches_clips_only_from_the_studios_origin(sim_task_url, live_server, listener):
    studio_port = live_server.url.rsplit(":", 1)[1]
    for video_url in [
        f"http://127.0.0.1:{listener.port}/clip.mp4",  # another service on this machine
        f"http://localhost:{listener.port}/clip.mp4",
        f"http://127.0.0.1:{listener.port}\\@127.0.0.1:{studio_port}/",  # urllib.parse sees the studio's origin
        f"http://127.0.0.1:{studio_port}@127.0.0.1:{listener.port}/",
        f"http://127.0.0.1:{listener.port}#@127.0.0.1:{studio_port}/",
        f"http://127.0.0.1:{listener.port}/ http://127.0.0.1:{studio_port}/",
    ]:
        refused = create_character(sim_task_url, video_url)
        assert refused.status_code == 400, video_url
        assert refused.json()["error"]["code"] == "video_url_unusable"
    assert (
        "only from the studio's own links"
        in create_character(sim_task_url, f"http://127.0.0.1:{listener.port}/clip.mp4").json()["error"]["message"]
    )
    assert listener.quiet()
    assert requests.get(f"{sim_task_url}/sora/characters", headers=AUTH, timeout=10).json()["characters"] == []


def test_the_simulator_does_not_follow_a_redirect(sim_task_url, settings, listener):
    redirecting = Listener(
        reply=(
            f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{listener.port}/clip.mp4\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    settings.SIMULATOR_FETCH_ORIGINS = [f"http://127.0.0.1:{redirecting.port}"]
    try:
        refused = create_character(sim_task_url, f"http://127.0.0.1:{redirecting.port}/clip.mp4")
    finally:
        redirecting.close()
    assert refused.status_code == 400
    assert "redirect (HTTP 302); it is not followed" in refused.json()["error"]["message"]
    assert redirecting.connections == 1 and listener.quiet()


def test_a_configured_origin_replaces_the_studios(sim_task_url, settings, listener):
    settings.SIMULATOR_FETCH_ORIGINS = [f"http://127.0.0.1:{listener.port}"]
    created = create_character(sim_task_url, f"http://127.0.0.1:{listener.port}/clip.mp4")
    assert created.status_code == 200, created.text
    assert listener.requests[0].startswith(b"GET /clip.mp4 ")


def test_an_unknown_character_mention_is_refused(sim_task_url):
    refused = generate(sim_task_url, "@char_doesnotexist dances")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "character_not_found"
    assert "@char_doesnotexist" in refused.json()["error"]["message"]


def test_it_extracts_a_character_only_from_its_own_completed_task(sim_task_url, settings):
    settings.SIMULATOR_API_KEYS = [SIM_KEY, "someone-else"]
    done = completed_task(sim_task_url)

    extracted = requests.post(
        f"{sim_task_url}/sora/characters/extract",
        json={"task_id": done["task_id"], "name": "Tin"},
        headers=AUTH,
        timeout=10,
    )
    assert extracted.status_code == 200
    assert extracted.json()["character_id"].startswith("char_")

    stranger = requests.post(
        f"{sim_task_url}/sora/characters/extract",
        json={"task_id": done["task_id"], "name": "Tin"},
        headers={"Authorization": "Bearer someone-else"},
        timeout=10,
    )
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "task_not_found"

    running = generate(sim_task_url, "A very long take #slow").json()["task_id"]
    too_early = requests.post(
        f"{sim_task_url}/sora/characters/extract", json={"task_id": running, "name": "Tin"}, headers=AUTH, timeout=10
    )
    assert too_early.status_code == 400
    assert too_early.json()["error"]["code"] == "task_not_completed"


def test_a_failing_prompt_ends_in_a_failure_word_with_an_error(sim_task_url):
    task_id = generate(sim_task_url, "A glass city shatters #fail").json()["task_id"]
    body, seen = poll_until_done(sim_task_url, task_id)
    assert body["status"] == vocabulary_for(task_id)["failed"]
    assert body["status"] in FAILURE_WORDS
    assert body["error"] == {
        "code": "video_generation_failed",
        "message": "The simulated renderer failed halfway through.",
    }
    assert body["video_url"] is None


def test_an_idempotency_key_returns_the_same_task(sim_task_url):
    first = generate(sim_task_url, "A snail races a leaf", headers={"Idempotency-Key": "scene-7"}).json()["task_id"]
    again = generate(sim_task_url, "A snail races a leaf", headers={"Idempotency-Key": "scene-7"}).json()["task_id"]
    other = generate(sim_task_url, "A snail races a leaf", headers={"Idempotency-Key": "scene-8"}).json()["task_id"]
    assert again == first
    assert other != first


def test_a_missing_or_wrong_key_is_refused(sim_task_url):
    assert requests.get(f"{sim_task_url}/sora/characters", timeout=10).status_code == 401
    wrong = requests.post(
        f"{sim_task_url}/sora/generate", json={"prompt": "A fox"}, headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"


def test_it_answers_429_when_the_key_has_too_many_tasks_in_flight(sim_task_url, settings):
    settings.SIMULATOR_MAX_IN_FLIGHT = 1
    assert generate(sim_task_url, "A very long take #slow").status_code == 200
    limited = generate(sim_task_url, "One more")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"


def test_moderation_flaky_and_garbage_triggers(sim_task_url):
    moderated = generate(sim_task_url, "Something nasty #moderation")
    assert moderated.status_code == 400
    assert moderated.json()["error"]["code"] == "moderation_blocked"

    flaky = generate(sim_task_url, "A windmill in fog #flaky").json()["task_id"]
    assert requests.get(f"{sim_task_url}/sora/tasks/{flaky}", headers=AUTH, timeout=10).status_code == 503
    assert poll_until_done(sim_task_url, flaky)[0]["status"] in SUCCESS_WORDS

    garbage = generate(sim_task_url, "A gateway melts #garbage").json()["task_id"]
    answer = requests.get(f"{sim_task_url}/sora/tasks/{garbage}", headers=AUTH, timeout=10)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
