"""The simulator's openai_videos protocol on the wire, for clients that do not use the SDK."""

from __future__ import annotations

import time

import pytest
import requests

from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = {"Authorization": f"Bearer {SIM_KEY}"}


def test_it_accepts_a_json_create_with_characters_and_an_image_url(sim_openai_url):
    mossy = requests.post(
        f"{sim_openai_url}/videos/characters",
        data={"name": "Mossy"},
        files={"video": ("mossy.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4")},
        headers=AUTH,
        timeout=10,
    ).json()
    created = requests.post(
        f"{sim_openai_url}/videos",
        json={
            "prompt": "Mossy naps in the sun",
            "model": "sora-2-pro",
            "seconds": "8",
            "size": "1792x1024",
            "characters": [{"id": mossy["id"]}],
            "input_reference": {"image_url": "https://example.com/first-frame.png"},
        },
        headers=AUTH,
        timeout=10,
    )
    assert created.status_code == 200
    video = created.json()
    assert set(video) == {
        "id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at",
        "prompt", "size", "seconds", "remixed_from_video_id", "error",
    }  # fmt: skip
    assert (video["model"], video["seconds"], video["size"]) == ("sora-2-pro", "8", "1792x1024")
    assert created.headers["openai-poll-after-ms"] == "100"  # speed 50 in tests: max(100, 2000/50)


def test_it_explains_errors_in_the_openai_shape(sim_openai_url):
    unauthorized = requests.get(f"{sim_openai_url}/videos", timeout=10)
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {
        "error": {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    missing = requests.post(f"{sim_openai_url}/videos", json={}, headers=AUTH, timeout=10)
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "prompt"


def test_a_running_video_has_no_content_and_cannot_be_deleted_yet(sim_openai_url):
    video = requests.post(f"{sim_openai_url}/videos", json={"prompt": "A long take #slow"}, headers=AUTH, timeout=10)
    video_id = video.json()["id"]
    content = requests.get(f"{sim_openai_url}/videos/{video_id}/content", headers=AUTH, timeout=10)
    assert content.status_code == 400
    assert content.json()["error"]["code"] == "video_not_ready"
    deleted = requests.delete(f"{sim_openai_url}/videos/{video_id}", headers=AUTH, timeout=10)
    assert deleted.status_code == 400
    assert deleted.json()["error"]["code"] == "video_not_finished"


def test_progress_rises_while_in_progress(sim_openai_url, settings):
    settings.SIMULATOR_SPEED = 5  # a 4 s clip takes 1.8 s: long enough to watch it move
    created = requests.post(
        f"{sim_openai_url}/videos", json={"prompt": "A slow sunrise"}, headers=AUTH, timeout=10
    ).json()
    video_id = created["id"]
    seen = [(created["status"], created["progress"])]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = requests.get(f"{sim_openai_url}/videos/{video_id}", headers=AUTH, timeout=10).json()
        seen.append((body["status"], body["progress"]))
        if body["status"] == "completed":
            break
        time.sleep(0.1)
    statuses = [status for status, _ in seen]
    # A busy machine may poll first after the queued share (0.27 s) is over: the create answer says queued.
    assert statuses[0] == "queued" and statuses[-1] == "completed"
    assert "in_progress" in statuses
    order = ["queued", "in_progress", "completed"]
    assert statuses == sorted(statuses, key=order.index)
    progress = [value for _, value in seen]
    assert progress == sorted(progress)
    assert seen[-1] == ("completed", 100)
