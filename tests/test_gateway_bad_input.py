"""Bad input to /v1/ is a 4xx in OpenAI's error shape naming what is wrong: never a 500, never a traceback."""

from __future__ import annotations

import base64
import json

import pytest

from generations.jobs.models import Generation
from tests.factories import make_generation
from tests.frames import picture
from tests.gateway import token_for
from tests.test_bad_input import JUNK

pytestmark = pytest.mark.django_db
# A real image as a data URL: an end image without a start image is refused for want of the start image.
PNG_URL = "data:image/png;base64," + base64.b64encode(picture(64, 36)).decode()


@pytest.fixture
def auth(alice, official_offline, aggregator_offline, held_tasks):
    return {"Authorization": f"Bearer {token_for(alice)}"}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert "Traceback" not in error["message"]
    return error


def post_json(client, auth, body, path="/v1/videos"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data, content_type="application/json", headers=auth)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ("{not json", None, "invalid_json"),
        ('{"prompt": "A fox\\u0000"}', None, "invalid_value"),
        ('{"prompt": "A fox \\ud800"}', None, "invalid_value"),
        ('{"prompt": "A fox", "seconds": ' + "[" * 900 + "]" * 900 + "}", "seconds", "invalid_type"),
        ('{"prompt": "A fox", "seconds": ' + "[" * 100_000 + "]" * 100_000 + "}", None, "invalid_json"),
        ('{"prompt": "A fox", "seconds": 1' + "0" * 5000 + "}", None, "invalid_json"),
        ("[1, 2]", None, "invalid_json"),
        ('"a string"', None, "invalid_json"),
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": "   "}, "prompt", "missing_required_parameter"),
        ({"prompt": 42}, "prompt", "invalid_type"),
        ({"prompt": ["a"]}, "prompt", "invalid_type"),
        ({"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
        ({"prompt": "A fox", "seconds": "-4"}, "seconds", "invalid_value"),
        ({"prompt": "A fox", "seconds": -4}, "seconds", "invalid_value"),
        ({"prompt": "A fox", "seconds": "0"}, "seconds", "invalid_value"),
        ({"prompt": "A fox", "seconds": "four"}, "seconds", "invalid_type"),
        ({"prompt": "A fox", "seconds": 4.5}, "seconds", "invalid_type"),
        ({"prompt": "A fox", "seconds": True}, "seconds", "invalid_type"),
        ({"prompt": "A fox", "seconds": "9" * 40}, "seconds", "invalid_value"),
        ({"prompt": "A fox", "size": "big"}, "size", "invalid_type"),
        ({"prompt": "A fox", "size": 720}, "size", "invalid_type"),
        ({"prompt": "A fox", "model": 3}, "model", "invalid_type"),
        ({"prompt": "A fox", "backend": "Nowhere"}, "backend", "invalid_value"),
        ({"prompt": "A fox", "characters": "char_x"}, "characters", "invalid_type"),
        ({"prompt": "A fox", "characters": [{"id": "char_" + "0" * 32}]}, "characters", "character_not_found"),
        ({"prompt": "A fox", "colour": "red"}, "colour", "unknown_parameter"),
        ({"prompt": "@nobody waves"}, "prompt", "character_not_found"),
        ({"prompt": "A fox", "input_reference": {"file_id": "file_1"}}, "input_reference", "unsupported_parameter"),
        (
            {"prompt": "A fox", "input_reference": {"image_url": "https://x.test/a.png"}},
            "input_reference",
            "unsupported_value",
        ),
        ({"prompt": "A fox", "input_reference": "a.png"}, "input_reference", "invalid_type"),
        (
            {"prompt": "A fox", "input_reference": {"image_url": "data:image/png;base64,aGVsbG8="}},
            "input_reference",
            "invalid_image",
        ),
        (
            {"prompt": "A fox", "input_reference": {"image_url": "data:image/png;base64,%%%"}},
            "input_reference",
            "invalid_image",
        ),
        ({"prompt": "A fox", "input_reference": {"character": "@nobody"}}, "input_reference", "character_not_found"),
        ({"prompt": "A fox", "input_reference": {"character": "@x", "still": 9}}, "input_reference", "invalid_value"),
        ({"prompt": "A fox", "input_reference": {"video_id": "video_nope"}}, "input_reference", "video_not_found"),
        ({"prompt": "A fox", "end_image": {"image_url": PNG_URL}}, "input_reference", "invalid_image"),
    ],
)
def test_a_bad_create_names_the_parameter(client, auth, body, param, code):
    error = error_of(post_json(client, auth, body), 400)
    assert (error["param"], error["code"]) == (param, code)
    assert Generation.objects.count() == 0


def test_a_wrong_content_type_is_a_400(client, auth):
    error = error_of(client.post("/v1/videos", "prompt=x", content_type="text/plain", headers=auth), 400)
    assert error["code"] == "unsupported_content_type" and "application/json" in error["message"]


def test_a_multipart_create_is_read_like_the_sdk_sends_it(client, auth):
    ok = client.post("/v1/videos", {"prompt": "A fox", "seconds": "8", "size": "720x1280"}, headers=auth)
    assert ok.status_code == 200 and ok.json()["seconds"] == "8" and ok.json()["status"] == "queued"
    error = error_of(client.post("/v1/videos", {"prompt": "A fox", "seconds": "-1"}, headers=auth), 400)
    assert error["param"] == "seconds"


def test_huge_bodies_are_refused_before_they_are_read(client, auth, settings):
    error = error_of(post_json(client, auth, json.dumps({"prompt": "x" * 2_000_000})), 413)
    assert error["code"] == "request_too_large"
    settings.MAX_REQUEST_BYTES = 1000  # the studio-wide cap, checked before any view: OpenAI's shape under /v1/
    error = error_of(post_json(client, auth, {"prompt": "x" * 2000}), 413)
    assert error["code"] == "request_too_large"


def test_bad_list_content_remix_and_character_requests_are_400s(client, auth, alice, official_offline):
    done = make_generation(alice, official_offline, status="completed", video=b"\x00\x00\x00\x18ftypmp42")
    video = f"/v1/videos/video_{done.uuid.hex}"
    for query, param in [
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"order": "sideways"}, "order"),
        ({"after": "nonsense"}, "after"),
        ({"after": "video_" + "0" * 32}, "after"),
    ]:
        assert error_of(client.get("/v1/videos", query, headers=auth), 400)["param"] == param
    assert error_of(client.get(f"{video}/content", {"variant": "gif"}, headers=auth), 400)["param"] == "variant"
    assert error_of(client.get(f"{video}/content", {"variant": "spritesheet"}, headers=auth), 400)["param"] == "variant"
    assert error_of(client.get(f"{video}/content", {"variant": "thumbnail"}, headers=auth), 404)["param"] == "variant"
    assert error_of(post_json(client, auth, {}, f"{video}/remix"), 400)["param"] == "prompt"
    assert error_of(post_json(client, auth, {"prompt": "x", "seed": 1}, f"{video}/remix"), 400)["param"] == "seed"
    assert error_of(client.post(f"{video}/remix", headers=auth), 400)["param"] == "prompt"  # no body at all

    characters = "/v1/videos/characters"
    assert error_of(client.post(characters, {"name": "Rex"}, headers=auth), 400)["param"] == "video"
    assert error_of(client.post(characters, {"name": "x" * 81}, headers=auth), 400)["param"] == "name"
    with open(__file__, "rb") as not_a_clip:
        error = error_of(client.post(characters, {"name": "Rex", "video": not_a_clip}, headers=auth), 400)
    assert error["param"] == "video" and ".mp4" in error["message"]


def test_wrong_methods_and_ids_answer_in_openai_shape(client, auth):
    assert error_of(client.put("/v1/videos", headers=auth), 405)["code"] == "method_not_allowed"
    assert error_of(client.post("/v1/videos/video_x/content", headers=auth), 405)["code"] == "method_not_allowed"
    for junk in ["x", "video_", "video_" + "z" * 32, "video_" + "9" * 5000, "char_x"]:
        assert error_of(client.get(f"/v1/videos/{junk}", headers=auth), 404)["code"] == "not_found"
    assert error_of(client.get("/v1/videos/characters/nope", headers=auth), 404)["param"] == "character_id"


@pytest.mark.parametrize("junk", JUNK)
def test_junk_in_every_field_is_never_a_500(client, auth, junk):
    fields = ["prompt", "model", "seconds", "size", "backend", "characters", "name", "limit", "order", "after"]
    for body in ({name: junk for name in fields}, {"prompt": "A fox", "seconds": junk, "size": junk}):
        for response in (
            post_json(client, auth, body),
            client.post("/v1/videos", body, headers=auth),
            client.get("/v1/videos", body, headers=auth),
            client.post("/v1/videos/characters", body, headers=auth),
        ):
            assert response.status_code < 500, (junk[:20], response.status_code, response.content[:200])
            assert response["Content-Type"] == "application/json"
