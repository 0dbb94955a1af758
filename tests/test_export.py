"""Leave with your work: a series (or everything) as a zip of videos, thumbnails, clips and manifest.json,
built by a worker while the page shows its progress."""

import json
import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from characters.models import CharacterBinding
from generations.billing.models import CostEntry, CostKind
from generations.storyboards.models import Export, Scene
from tests.exports import download, export_zip, open_zip, request_export
from tests.factories import make_character, make_generation, make_series, make_user

pytestmark = pytest.mark.django_db

CLIP = b"\x00\x00\x00\x18ftypmp42 rex clip"


def make_take(scene, backend, *, status="completed", minutes_ago=0, charge=None, characters=()):
    done = status == "completed"
    take = make_generation(
        scene.series.owner,
        backend,
        scene=scene,
        prompt=scene.prompt,
        prompt_sent=scene.prompt.replace("@rex", "Rex"),
        size="1280x720",
        status=status,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        video=b"VIDEO-%d" % scene.pk + os.urandom(4) if done else None,
        thumbnail=b"RIFF-THUMB" if done else None,
    )
    take.characters.set(characters)
    if charge is not None:
        CostEntry.objects.record(
            kind=CostKind.CHARGE, amount=Decimal(charge), backend=backend, owner=take.owner, generation=take
        )
    return take


@pytest.fixture
def rex_at_sea(alice, backend):
    rex = make_character(alice, "rex", description="A red crab", clip=CLIP)
    CharacterBinding.objects.create(character=rex, backend=backend, status="ready", remote_id="char_1")
    series = make_series(
        alice, "Rex at sea!", description="A crab's voyage", backend=backend, seconds="4", size="1280x720"
    )
    series.characters.add(rex)
    harbour = Scene.objects.create(series=series, prompt="@rex leaves the harbour", position=0)
    storm = Scene.objects.create(series=series, prompt="A storm", position=1)
    Scene.objects.create(series=series, prompt="The island", position=2)
    first = make_take(harbour, backend, minutes_ago=10, charge="0.40", characters=[rex])
    second = make_take(harbour, backend, minutes_ago=5, charge="0.40", characters=[rex])
    harbour.chosen_take = first
    harbour.save()
    failed = make_take(storm, backend, status="failed")
    return {"series": series, "rex": rex, "first": first, "second": second, "failed": failed}


def test_a_series_exports_as_a_zip_with_its_videos_and_a_manifest(client, alice, rex_at_sea):
    series, first, second = rex_at_sea["series"], rex_at_sea["first"], rex_at_sea["second"]
    client.force_login(alice)

    export = request_export(client, reverse("series_export", args=[series.pk]))

    response = download(client, export)
    assert response["Content-Disposition"] == f'attachment; filename="rex-at-sea-{series.pk}.zip"'
    archive = open_zip(response)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["series"] | {"scenes": None, "created_at": None} == {
        "title": "Rex at sea!",
        "description": "A crab's voyage",
        "backend": "Official",
        "model": "sora-2",
        "seconds": "4",
        "size": "1280x720",
        "characters": ["@rex"],
        "scenes": None,
        "created_at": None,
    }
    harbour, storm, island = manifest["series"]["scenes"]
    assert (harbour["number"], harbour["prompt"]) == (1, "@rex leaves the harbour")
    assert harbour["chosen_take"] == first.pk and harbour["chosen_by"] == "creator"
    takes = {take["id"]: take for take in harbour["takes"]}
    assert [take["chosen"] for take in harbour["takes"]] == [False, True]  # newest first; the chosen one marked
    take = takes[first.pk]
    assert {
        key: take[key]
        for key in (
            "prompt",
            "prompt_sent",
            "characters",
            "backend",
            "protocol",
            "model",
            "seconds",
            "size",
            "status",
            "cost_usd",
        )
    } == {
        "prompt": "@rex leaves the harbour",
        "prompt_sent": "Rex leaves the harbour",
        "characters": ["@rex"],
        "backend": "Official",
        "protocol": "openai_videos",
        "model": "sora-2",
        "seconds": "4",
        "size": "1280x720",
        "status": "completed",
        "cost_usd": "0.4",
    }
    assert [e["kind"] for e in take["cost_entries"]] == ["charge"]
    # Every completed take's files are in the zip, byte for byte.
    for generation in (first, second):
        entry = takes[generation.pk]
        assert archive.read(entry["video"]) == generation.video.read()
        assert archive.read(entry["thumbnail"]) == b"RIFF-THUMB"
    assert manifest["playlist"] == [takes[first.pk]["video"]]
    assert storm["takes"][0]["status"] == "failed" and storm["takes"][0]["video"] is None
    assert island["takes"] == [] and island["chosen_take"] is None
    assert manifest["total_cost_usd"] == "0.8"
    assert manifest["backends"] == [
        {"name": "Official", "protocol": "openai_videos", "base_url": "http://127.0.0.1:9/v1", "tier": "official"}
    ]
    assert "secret-key" not in archive.read("manifest.json").decode()
    (rex,) = manifest["characters"]
    assert (rex["handle"], rex["description"]) == ("@rex", "A red crab")
    assert rex["bindings"][0] | {"cost_usd": None} == {
        "backend": "Official",
        "protocol": "openai_videos",
        "status": "ready",
        "remote_id": "char_1",
        "error": None,
        "cost_usd": None,
    }
    assert archive.read(rex["source_clip"]) == CLIP
    assert manifest["missing_files"] == []


def test_a_file_missing_from_storage_is_noted_not_fatal(client, alice, rex_at_sea):
    first = rex_at_sea["first"]
    os.remove(first.video.path)
    client.force_login(alice)

    archive = export_zip(client, reverse("series_export", args=[rex_at_sea["series"].pk]))

    manifest = json.loads(archive.read("manifest.json"))
    entry = next(t for t in manifest["series"]["scenes"][0]["takes"] if t["id"] == first.pk)
    assert entry["video"] is None and entry["thumbnail"] is not None
    assert manifest["missing_files"] == [f"scene-001/{first.pk}-video.mp4"]
    assert manifest["playlist"] == []


def test_everything_exports_as_one_zip(client, alice, bob, backend, rex_at_sea):
    loose = make_generation(alice, backend, prompt="A loose video", status="completed", video=b"LOOSE")
    gone = make_generation(alice, backend, prompt="Deleted", status="completed", deleted_at=timezone.now())
    bobs_series = make_series(bob, "Bob's")
    make_take(Scene.objects.create(series=bobs_series, prompt="Bob's scene"), backend)
    client.force_login(alice)

    response = download(client, request_export(client, reverse("export_all")))

    assert response["Content-Disposition"].startswith('attachment; filename="sora-studio-alice-')
    archive = open_zip(response)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["owner"] == "alice"
    generations = {g["id"]: g for g in manifest["generations"]}
    assert set(generations) == {rex_at_sea["first"].pk, rex_at_sea["second"].pk, rex_at_sea["failed"].pk, loose.pk}
    assert gone.pk not in generations
    assert generations[loose.pk]["series"] is None
    assert archive.read(generations[loose.pk]["video"]) == b"LOOSE"
    assert (generations[rex_at_sea["first"].pk]["series"], generations[rex_at_sea["first"].pk]["scene"]) == (
        "Rex at sea!",
        1,
    )
    (series,) = manifest["series"]
    assert series["title"] == "Rex at sea!"
    assert series["scenes"][0]["chosen_take"] == rex_at_sea["first"].pk
    assert series["scenes"][0]["takes"] == [rex_at_sea["second"].pk, rex_at_sea["first"].pk]
    assert [c["handle"] for c in manifest["characters"]] == ["@rex"]
    assert "Bob's scene" not in archive.read("manifest.json").decode()


def test_another_creator_cannot_export_my_series(client, bob, rex_at_sea):
    client.force_login(bob)

    assert client.post(reverse("series_export", args=[rex_at_sea["series"].pk])).status_code == 404
    mine = json.loads(export_zip(client, reverse("export_all")).read("manifest.json"))
    assert mine["generations"] == [] and mine["series"] == [] and mine["characters"] == []


def test_staff_may_export_anyones_series(client, rex_at_sea):
    client.force_login(make_user("root", is_staff=True))

    archive = export_zip(client, reverse("series_export", args=[rex_at_sea["series"].pk]))

    assert json.loads(archive.read("manifest.json"))["series"]["title"] == "Rex at sea!"


def test_exports_need_a_login(client, rex_at_sea):
    for url in [reverse("series_export", args=[rex_at_sea["series"].pk]), reverse("export_all")]:
        response = client.post(url)
        assert response.status_code == 302 and response.url.startswith("/login/")
    for url in [reverse("export_list"), reverse("export_detail", args=[1]), reverse("export_download", args=[1])]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/")
    assert not Export.objects.exists()
