"""The simulator answers absurd numbers with a 400 in its protocol's own error shape, never a 500."""

import pytest

from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {SIM_KEY}"}
# Written as raw JSON: 1e400 parses to infinity, NaN and Infinity are what Python's json accepts.
BAD_NUMBERS = [
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-1",
    "0",
    "26",
    "1" + "0" * 4000,
    "10.5",
    "true",
    "false",
    '"ten"',
    '"1e400"',
    "null",
    "[10]",
    '{"s": 10}',
]


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_the_task_api_refuses_a_bad_duration_with_its_error_shape(client, value):
    body = f'{{"prompt": "A paper boat", "duration": {value}}}'
    response = client.post("/simulator/task/v1/sora/generate", body, content_type="application/json", **AUTH)
    assert response.status_code == 400, response.content[:200]
    error = response.json()["error"]
    assert set(error) == {"message", "code"}
    assert error["code"] in ("invalid_duration", "invalid_json") and error["message"]


@pytest.mark.parametrize("value", ["10", "10.0", '"10"'])
def test_the_task_api_takes_a_whole_duration_however_it_is_written(client, value):
    body = f'{{"prompt": "A paper boat", "duration": {value}}}'
    response = client.post("/simulator/task/v1/sora/generate", body, content_type="application/json", **AUTH)
    assert response.status_code == 200 and response.json()["task_id"].startswith("task_")


@pytest.mark.parametrize("value", BAD_NUMBERS + ['"4.0"', "4.0", '""', '" 4"'])
def test_openai_videos_refuses_bad_seconds_with_its_error_shape(client, value):
    body = f'{{"prompt": "A paper boat", "seconds": {value}}}'
    response = client.post("/simulator/openai/v1/videos", body, content_type="application/json", **AUTH)
    if value == "null":  # no value: the default, as the API does
        assert response.status_code == 200
        return
    assert response.status_code == 400, (value, response.content[:200])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] in ("seconds", None)


def test_openai_videos_refuses_a_huge_limit_on_the_list(client):
    response = client.get("/simulator/openai/v1/videos", {"limit": "9" * 5000}, **AUTH)
    assert response.status_code == 400 and response.json()["error"]["param"] == "limit"
