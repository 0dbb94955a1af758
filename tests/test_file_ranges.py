"""Stored videos answer byte ranges, so players can seek (and Safari can play at all)."""

import pytest
from django.core.files.base import ContentFile

from generations.jobs.models import Generation
from tests.factories import make_dead_backend, make_generation

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def video(alice):
    backend = make_dead_backend("B", "task_api", prices=False)
    g = make_generation(alice, backend, prompt="x", seconds="10", status="completed")
    g.video.save("video.mp4", ContentFile(DATA))
    return g


def body(response):
    return b"".join(response.streaming_content)


def test_a_whole_file_says_it_accepts_ranges(client, alice, video):
    client.force_login(alice)
    response = client.get(f"/generations/{video.pk}/video.mp4")
    assert response.status_code == 200 and response["Accept-Ranges"] == "bytes" and body(response) == DATA


@pytest.mark.parametrize(
    "header,start,end",
    [
        ("bytes=0-99", 0, 99),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),
    ],
)
def test_a_range_gets_206_with_exactly_those_bytes(client, alice, video, header, start, end):
    client.force_login(alice)
    response = client.get(f"/generations/{video.pk}/video.mp4", HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/10240"
    assert response["Content-Type"] == "video/mp4"
    assert body(response) == DATA[start : end + 1]


def test_a_range_past_the_end_is_416(client, alice, video):
    client.force_login(alice)
    response = client.get(f"/generations/{video.pk}/video.mp4", HTTP_RANGE="bytes=99999-")
    assert response.status_code == 416 and response["Content-Range"] == "bytes */10240"


def test_someone_elses_video_is_404_even_by_range(client, bob, video):
    client.force_login(bob)
    assert client.get(f"/generations/{video.pk}/video.mp4", HTTP_RANGE="bytes=0-9").status_code == 404


@pytest.mark.parametrize(
    "header,status,start,end",
    [
        ("bytes=" + "1" * 5000 + "-", 416, None, None),  # a start past any file
        ("bytes=0-" + "9" * 5000, 206, 0, 10239),  # an end past the file means "to the end"
        ("bytes=-" + "9" * 5000, 206, 0, 10239),  # a suffix longer than the file is the whole file
        ("bytes=" + "0" * 5000 + "5-9", 206, 5, 9),  # leading zeros are still the number 5
    ],
)
def test_a_range_with_thousands_of_digits_is_answered_not_a_500(client, alice, video, header, status, start, end):
    client.force_login(alice)
    response = client.get(f"/generations/{video.pk}/video.mp4", HTTP_RANGE=header)
    assert response.status_code == status
    if status == 206:
        assert response["Content-Range"] == f"bytes {start}-{end}/10240" and body(response) == DATA[start : end + 1]
    else:
        assert response["Content-Range"] == "bytes */10240"


def test_a_refused_range_leaves_the_database_connection_open(client, alice, video):
    client.force_login(alice)
    assert client.get(f"/generations/{video.pk}/video.mp4", HTTP_RANGE="bytes=99999-").status_code == 416
    assert Generation.objects.filter(pk=video.pk).exists()  # the same connection, still usable
