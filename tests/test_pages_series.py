"""Series: create one with defaults, add scenes in order, generate all (refusals shown, not 500s)."""

import pytest
from django.urls import reverse

from characters.models import Character
from generations.models import Backend, Generation, Scene, Series

pytestmark = pytest.mark.django_db



@pytest.fixture
def official():
    backend = Backend.objects.create(name="Official", protocol="openai_videos", base_url="http://127.0.0.1:9/v1",
                                     api_key="k")
    backend.install_default_prices()
    return backend


def test_a_series_is_created_with_its_defaults(client, alice, bob, official):
    rex = Character.objects.create(owner=alice, name="Rex", handle="rex")
    Character.objects.create(owner=bob, name="Bob's", handle="bobs")
    client.force_login(alice)

    form = client.get(reverse("series_list"))
    assert "@rex" in form.text and "@bobs" not in form.text  # only my own characters to pick
    response = client.post(reverse("series_list"), {
        "title": "Rex at sea", "description": "", "characters": [rex.pk], "backend": official.pk,
        "model": "sora-2", "seconds": "8", "size": "1280x720"})

    series = Series.objects.get()
    assert response.url == reverse("series_detail", args=[series.pk])
    assert (series.owner, series.backend, series.seconds, series.size) == (alice, official, "8", "1280x720")
    assert list(series.characters.all()) == [rex]


def test_defaults_no_backend_can_make_are_refused(client, alice, official):
    client.force_login(alice)

    response = client.post(reverse("series_list"), {"title": "x", "backend": official.pk, "model": "sora-2",
                                                    "seconds": "4", "size": "1792x1024"})

    assert response.status_code == 200
    assert "not 1792x1024" in response.text
    assert not Series.objects.exists()


def test_generate_all_starts_each_scene_and_reports_refusals(client, alice, official,
                                                            django_capture_on_commit_callbacks):
    series = Series.objects.create(owner=alice, title="Rex at sea", backend=official)
    client.force_login(alice)
    for prompt in ["A boat leaves the harbour", "@nobody waves from the shore", "The boat sinks"]:
        client.post(reverse("scene_add", args=[series.pk]), {"prompt": prompt})
    assert list(series.scenes.values_list("position", flat=True)) == [0, 1, 2]

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("series_generate_all", args=[series.pk]), follow=True)

    assert response.status_code == 200
    assert Generation.objects.filter(scene__series=series).count() == 2
    assert "Scene 2: No character called @nobody in your library." in response.text
    assert "Started 2 scenes." in response.text
    assert response.text.count('hx-trigger="every 2s"') == 2  # the two new takes, live

    with django_capture_on_commit_callbacks(execute=False):
        again = client.post(reverse("series_generate_all", args=[series.pk]), follow=True)
    assert Generation.objects.count() == 2  # running scenes are not started twice
    assert "Skipped 2 scenes already running or done" in again.text


def test_one_scene_can_be_regenerated_in_place(client, alice, official, django_capture_on_commit_callbacks):
    series = Series.objects.create(owner=alice, title="Rex at sea", backend=official)
    scene = Scene.objects.create(series=series, prompt="A boat")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("scene_generate", args=[scene.pk]), headers={"HX-Request": "true"})

    take = Generation.objects.get()
    assert take.scene == scene and take.seconds == series.seconds
    assert response.text.lstrip().startswith(f'<li id="scene-{scene.pk}"')
    assert f'id="gen-{take.pk}"' in response.text
    assert "Regenerate" in response.text
