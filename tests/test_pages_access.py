"""Every page needs a login, and one creator's things are invisible (404) to another."""

import pytest
from django.urls import reverse

from generations.storyboards.models import Scene
from tests.factories import make_character, make_generation, make_series, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_things(alice, backend):
    generation = make_generation(
        alice,
        backend,
        prompt="A lighthouse",
        status="completed",
        video=b"\x00\x00\x00\x18ftypmp42",
        thumbnail=b"RIFF0000WEBP",
    )
    character = make_character(alice, "rex")
    series = make_series(alice, "Rex at sea")
    scene = Scene.objects.create(series=series, prompt="@rex sails")
    return {"generation": generation, "character": character, "series": series, "scene": scene}


PAGES = ["gallery", "generation_new", "series_list", "spending", "characters:list", "characters:new", "export_list"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_sends_a_stranger_to_the_login_page(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_object_pages_need_a_login_too(client, alices_things):
    generation = alices_things["generation"]
    for url in [
        reverse("generation_detail", args=[generation.pk]),
        reverse("generation_video", args=[generation.pk]),
        reverse("characters:detail", args=[alices_things["character"].pk]),
        reverse("series_detail", args=[alices_things["series"].pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url


def test_the_login_page_is_public(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_bob_gets_404_for_everything_of_alices(client, bob, alices_things):
    generation = alices_things["generation"]
    client.force_login(bob)

    for url in [
        reverse("generation_detail", args=[generation.pk]),
        reverse("generation_card", args=[generation.pk]),
        reverse("generation_video", args=[generation.pk]),
        reverse("generation_thumbnail", args=[generation.pk]),
        reverse("characters:detail", args=[alices_things["character"].pk]),
        reverse("series_detail", args=[alices_things["series"].pk]),
    ]:
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 404, url
        assert client.get(url).status_code == 404, url
    for url in [
        reverse("generation_cancel", args=[generation.pk]),
        reverse("characters:extract", args=[generation.pk]),
        reverse("characters:register", args=[alices_things["character"].pk]),
        reverse("series_generate_all", args=[alices_things["series"].pk]),
        reverse("scene_add", args=[alices_things["series"].pk]),
        reverse("scene_generate", args=[alices_things["scene"].pk]),
    ]:
        assert client.post(url, {"name": "x", "handle": "xx", "prompt": "x"}).status_code == 404, url


def test_alice_sees_and_plays_her_own_video(client, alice, alices_things):
    generation = alices_things["generation"]
    client.force_login(alice)

    page = client.get(reverse("generation_detail", args=[generation.pk]))
    assert page.status_code == 200
    assert f'src="{reverse("generation_video", args=[generation.pk])}"'.encode() in page.content
    assert b"<video" in page.content

    video = client.get(reverse("generation_video", args=[generation.pk]))
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    assert b"".join(video.streaming_content).startswith(b"\x00\x00\x00\x18ftyp")
    assert "attachment" not in video.get("Content-Disposition", "")

    download = client.get(reverse("generation_video", args=[generation.pk]), {"download": "1"})
    assert download["Content-Disposition"].startswith("attachment")


def test_staff_see_everyones_generations(client, alices_things):
    staff = make_user("root", is_staff=True)
    client.force_login(staff)

    assert client.get(reverse("generation_detail", args=[alices_things["generation"].pk])).status_code == 200
    assert b"A lighthouse" in client.get(reverse("gallery")).content
