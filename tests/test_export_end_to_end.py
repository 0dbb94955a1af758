"""A series generated against the simulator over real HTTP, watched and exported with its real MP4s."""

import json

import pytest
from django.urls import reverse

from generations.states import Status
from generations.storyboards import board
from generations.storyboards.models import Scene
from tests.conftest import drive
from tests.exports import export_zip
from tests.factories import make_series

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_generated_series_plays_and_exports_its_real_videos(client, alice, official):
    series = make_series(alice, "Lighthouse", backend=official, seconds="4", size="1280x720")
    for position, prompt in enumerate(["A lighthouse at dawn", "The lamp turns on"]):
        Scene.objects.create(series=series, prompt=prompt, position=position)

    started, refused, skipped = board.generate_all(series)
    takes = [drive(one.generation) for one in started]
    assert not refused and not skipped and all(t.status == Status.COMPLETED for t in takes)
    client.force_login(alice)

    progress = client.get(reverse("series_progress", args=[series.pk]), headers={"HX-Request": "true"})
    assert progress.status_code == 286 and "2 of 2 scenes done" in progress.text
    watch = client.get(reverse("series_watch", args=[series.pk])).text
    assert all(f'data-src="{reverse("generation_video", args=[t.pk])}"' in watch for t in takes)

    archive = export_zip(client, reverse("series_export", args=[series.pk]))
    manifest = json.loads(archive.read("manifest.json"))
    assert len(manifest["playlist"]) == 2
    for scene, take in zip(manifest["series"]["scenes"], takes, strict=True):
        (entry,) = scene["takes"]
        assert entry["id"] == take.pk and entry["chosen"] and entry["remote_id"].startswith("video_")
        assert entry["cost_usd"] == "0.4"  # 4 s at $0.10/s
        assert archive.read(entry["video"])[4:8] == b"ftyp"
        assert archive.read(entry["thumbnail"])[:4] == b"RIFF"
    assert manifest["total_cost_usd"] == "0.8"
