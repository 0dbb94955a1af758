"""Bad input gets a clear answer, never a 500: every page and action of the studio, hit with
someone else's ids, ids that do not exist, and junk in every field and query parameter."""

import pytest
from django.core.files.base import ContentFile
from django.urls import get_resolver

from characters.models import Character
from generations.models import Generation, Scene, Series

pytestmark = pytest.mark.django_db

JUNK = ["", " ", "0", "-1", "9" * 30, "abc", "<script>alert(1)</script>", "../../etc/passwd", "@", "@@x",
        "x" * 40_000, "2026-13", "NaN", "\x00", "[]", "{}"]


def studio_routes():
    """Every URL pattern of the studio (not the admin, not the simulator) with its argument names."""
    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern)

    return [r for r in walk(get_resolver().url_patterns) if not r.startswith(("admin", "simulator"))]


@pytest.fixture
def bobs_things(bob, backend):
    generation = Generation(owner=bob, backend=backend, prompt="Bob's", model="sora-2", seconds="4",
                            size="720x1280", status="completed")
    generation.video.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=False)
    generation.save()
    character = Character.objects.create(owner=bob, name="Bobby", handle="bobby")
    series = Series.objects.create(owner=bob, title="Bob's series")
    scene = Scene.objects.create(series=series, prompt="x", position=1)
    return {"generation": generation, "character": character, "series": series, "scene": scene}


def fill(route: str, value: str) -> str:
    path = route
    for name in ("<int:pk>", "<int:generation_pk>", "<int:take_pk>", "<str:token>"):
        path = path.replace(name, value)
    return "/" + path


@pytest.mark.parametrize("ids", ["missing", "bobs"])
def test_no_page_or_action_answers_500_for_other_peoples_or_missing_ids(client, alice, bobs_things, ids):
    client.force_login(alice)
    assert len({thing.pk for thing in bobs_things.values()}) == 1  # one id names bob's thing of every kind
    value = "999999" if ids == "missing" else str(bobs_things["generation"].pk)
    for route in studio_routes():
        if route == "logout/":
            continue
        url = fill(route, value)
        for method in (client.get, client.post):
            response = method(url, {"prompt": "junk", "name": "x", "handle": "x", "title": "x"})
            assert response.status_code < 500, (method.__name__, url, response.status_code)
            if "<int:" in route and ids == "bobs":
                assert response.status_code in (404, 405), (method.__name__, url, response.status_code)


def test_junk_in_every_field_and_query_parameter_is_answered_without_a_500(client, alice, backend):
    client.force_login(alice)
    fields = ["prompt", "backend", "model", "seconds", "size", "q", "status", "series", "character", "date_from",
              "date_to", "after", "month", "videos", "name", "handle", "description", "video_url", "title",
              "direction", "token", "format", "version", "variant", "download"]
    routes = [r for r in studio_routes() if "<" not in r and r not in ("logout/",)]
    for junk in JUNK:
        data = {field: junk for field in fields}
        for route in routes:
            url = "/" + route
            get = client.get(url, data)
            post = client.post(url, data)
            assert get.status_code < 500, (url, junk[:20], get.status_code)
            assert post.status_code < 500, (url, junk[:20], post.status_code)
            for response in (get, post):
                if response.get("Content-Type", "").startswith("text/html") and not response.streaming:
                    assert "Traceback" not in response.content.decode(errors="replace")


def test_a_nul_character_anywhere_is_a_400_with_a_reason(client, alice):
    client.force_login(alice)
    for url in ["/generations/mentions/?q=%00", "/?q=a%00b", "/spending/?month=%00"]:
        response = client.get(url)
        assert response.status_code == 400 and b"NUL character" in response.content
    response = client.post("/generations/new/", {"prompt": "a\x00b", "token": "t"})
    assert response.status_code == 400


HUGE_ID = "9" * 20  # past a 64-bit integer: SQLite raises OverflowError if it is sent as a parameter


def test_an_id_too_large_for_the_database_is_a_form_error(client, alice, backend, bobs_things, django_user_model):
    client.force_login(alice)
    offer = {"model": "sora-2", "seconds": "4", "size": "720x1280"}
    posts = {
        "/characters/new/": {"name": "Al", "handle": "al", "video_url": "https://example.com/a.mp4",
                             "backends": [HUGE_ID]},
        "/series/": {"title": "S", "characters": [HUGE_ID, "1"], "backend": HUGE_ID, **offer},
        f"/series/{bobs_things['series'].pk}/edit/": {"title": "S", "characters": [HUGE_ID], **offer},
        "/generations/new/": {"prompt": "x", "token": "t", "backend": HUGE_ID, **offer},
    }
    for url, data in posts.items():
        response = client.post(url, data)
        assert response.status_code in (200, 404), (url, response.status_code)
        if response.status_code == 200:
            assert "Select a valid choice" in response.text, url
    gallery = client.get("/", {"series": HUGE_ID, "character": HUGE_ID, "backend": HUGE_ID})
    assert gallery.status_code == 200 and "Select a valid choice" in gallery.text

    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff)
    response = client.post(f"/admin/generations/series/{bobs_things['series'].pk}/change/",
                           {"owner": bobs_things["series"].owner_id, "title": "S", "characters": [HUGE_ID],
                            "model": "sora-2", "seconds": "4", "size": "720x1280", "scenes-TOTAL_FORMS": "0",
                            "scenes-INITIAL_FORMS": "0"})
    assert response.status_code == 200 and "Select a valid choice" in response.text
