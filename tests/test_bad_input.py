"""Bad input gets a clear answer, never a 500: every page and action of the studio, hit with
someone else's ids, ids that do not exist, and junk in every field and query parameter."""

import pytest
from django.core.files.base import ContentFile
from django.urls import get_resolver
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from characters.models import Character
from generations.jobs.models import Generation
from generations.storyboards.models import Scene, Series
from tests.factories import make_character, make_generation, make_series, make_user

pytestmark = pytest.mark.django_db

JUNK = [
    "",
    " ",
    "0",
    "-1",
    "9" * 30,
    "abc",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "@",
    "@@x",
    "x" * 40_000,
    "2026-13",
    "NaN",
    "\x00",
    "[]",
    "{}",
]


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
    # One id for bob's thing of every kind, given outright: PostgreSQL's sequences are not reset between
    # tests, so ids handed out by the database drift apart.
    pk = 4242
    generation = Generation(
        pk=pk,
        owner=bob,
        backend=backend,
        prompt="Bob's",
        model="sora-2",
        seconds=4,
        size="720x1280",
        status="completed",
    )
    generation.video.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=False)
    generation.save()
    character = Character.objects.create(pk=pk, owner=bob, name="Bobby", handle="bobby")
    series = Series.objects.create(pk=pk, owner=bob, title="Bob's series")
    scene = Scene.objects.create(pk=pk, series=series, prompt="x", position=1)
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
    fields = [
        "prompt",
        "backend",
        "model",
        "seconds",
        "size",
        "q",
        "status",
        "series",
        "character",
        "date_from",
        "date_to",
        "after",
        "month",
        "videos",
        "name",
        "handle",
        "description",
        "video_url",
        "title",
        "direction",
        "token",
        "format",
        "version",
        "variant",
        "download",
    ]
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


def test_an_id_too_large_for_the_database_is_a_form_error(client, alice, backend, bobs_things):
    client.force_login(alice)
    offer = {"model": "sora-2", "seconds": "4", "size": "720x1280"}
    posts = {
        "/characters/new/": {
            "name": "Al",
            "handle": "al",
            "video_url": "https://example.com/a.mp4",
            "backends": [HUGE_ID],
        },
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

    staff = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(staff)
    response = client.post(
        f"/admin/generations/series/{bobs_things['series'].pk}/change/",
        {
            "owner": bobs_things["series"].owner_id,
            "title": "S",
            "characters": [HUGE_ID],
            "model": "sora-2",
            "seconds": "4",
            "size": "720x1280",
            "scenes-TOTAL_FORMS": "0",
            "scenes-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200 and "Select a valid choice" in response.text


# --- A property-based sweep: any value in anything the studio reads ------------------------------

# Every query parameter, form field and header the studio's code reads (grep request.GET / POST /
# headers, the forms' fields, and django-htmx's HX-* headers), and Range for the stored files.
GET_FIELDS = [
    "q",
    "status",
    "series",
    "character",
    "backend",
    "date_from",
    "date_to",
    "after",
    "month",
    "videos",
    "seconds",
    "format",
    "version",
    "prompt",
    "model",
    "size",
    "seen",
    "download",
]
POST_FIELDS = [
    "token",
    "prompt",
    "backend",
    "model",
    "seconds",
    "size",
    "name",
    "handle",
    "description",
    "video_url",
    "backends",
    "title",
    "characters",
    "direction",
]
MULTI_FIELDS = {"backends", "characters"}
HEADERS = [
    "HTTP_RANGE",
    "HTTP_HX_REQUEST",
    "HTTP_HX_TARGET",
    "HTTP_HX_TRIGGER",
    "HTTP_HX_TRIGGER_NAME",
    "HTTP_HX_CURRENT_URL",
    "HTTP_HX_BOOSTED",
    "HTTP_HX_HISTORY_RESTORE_REQUEST",
    "HTTP_HX_PROMPT",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_RANGE",
    "HTTP_ACCEPT_LANGUAGE",
]

# Values known to have broken parsers somewhere: digit strings int() refuses or the database cannot
# hold, digits str.isdigit() accepts and int() does not, floats that are not numbers.
NASTY = JUNK + [
    HUGE_ID,
    "9" * 5000,
    "-" + HUGE_ID,
    "1e400",
    "Infinity",
    "-0",
    "²",
    "１２",
    "٣",
    "0x10",
    "1_000",
    "true",
    "None",
    "2026-02-30",
    "9999-12",
    "0-0",
    "1_" + HUGE_ID,
    HUGE_ID + "_1",
    "bytes=0-",
    "bytes=" + "1" * 5000 + "-",
    "bytes=-" + "9" * 5000,
    "bytes=5-1",
    "bytes=0-0,1-1",
    "active",
    "720x1280",
    "sora-2",
    "4",
    "10",
    "csv",
    "up",
    "down",
    "1",
]
# One of each kind of number that has broken a parser: too large for a 64-bit column, too many digits
# for int(), a float no integer equals, a digit str.isdigit() accepts and int() refuses. Each goes into
# every field of every route as an explicit example; hypothesis adds random mixes on top.
NUMERIC = [HUGE_ID, "9" * 5000, "1e400", "²"]
values = st.one_of(st.sampled_from(NUMERIC), st.sampled_from(NASTY), st.text(max_size=30), st.integers().map(str))
# What a real client can put in a header: printable Latin-1, no line breaks.
header_values = st.one_of(
    st.sampled_from(NASTY[:-12] + ["true", "false", "*", '"v1"', 'W/"x"']),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
)
# Four explicit and four random examples per route: ~25 s for both sweeps on a 2-core machine.
PER_ROUTE = settings(
    max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def with_every_field_set_to_each_number(fields, headers):
    """Decorators adding one explicit example per NUMERIC value: every field (and header) holds it."""

    def decorate(check):
        for number in NUMERIC:
            data = {name: [number] if name in MULTI_FIELDS else number for name in fields}
            sent = {key: f"bytes={number}-" if key == "HTTP_RANGE" else number for key in headers}
            check = example(sent | {"HTTP_HX_REQUEST": "true"}, data)(check)
        return check

    return decorate


@pytest.fixture
def alices_things(alice, backend):
    """Alice's own objects, so that junk reaches the code behind the access checks."""
    generation = make_generation(
        alice,
        backend,
        prompt="Alice's",
        status="completed",
        video=b"\x00\x00\x00\x18ftypmp42" * 10,
        thumbnail=b"RIFF\x00\x00\x00\x00WEBP",
    )
    series = make_series(alice, "Alice's series")
    scene = Scene.objects.create(series=series, prompt="x", position=1)
    generation.scene = scene
    generation.save()
    character = make_character(alice, "ally")
    return {
        "generations/": generation.pk,
        "characters/": character.pk,
        "series/": series.pk,
        "scenes/": scene.pk,
        "take": generation.pk,
    }


def own_url(route: str, pks: dict) -> str:
    prefix = next((p for p in pks if route.startswith(p)), "generations/")
    path = route.replace("<int:take_pk>", str(pks["take"])).replace("<int:generation_pk>", str(pks["take"]))
    return "/" + path.replace("<int:pk>", str(pks[prefix])).replace("<str:token>", "junk-token")


def sweep_routes():
    return [r for r in studio_routes() if r not in ("logout/", "login/")]


def assert_answered(response, what):
    assert response.status_code < 500, (what, response.status_code)
    if response.get("Content-Type", "").startswith("text/html") and not response.streaming:
        assert "Traceback" not in response.content.decode(errors="replace"), what


def test_any_query_string_and_headers_on_any_page_are_answered_without_a_500(client, alice, alices_things, held_tasks):
    client.force_login(alice)
    params = st.fixed_dictionaries({name: values for name in GET_FIELDS})
    headers = st.dictionaries(st.sampled_from(HEADERS), header_values, max_size=5)
    for route in sweep_routes():
        url = own_url(route, alices_things)

        @PER_ROUTE
        @given(headers=headers, params=params)
        @with_every_field_set_to_each_number(GET_FIELDS, ["HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_HX_TARGET"])
        def check(headers, params):
            # check() runs right below, in this iteration, so `url` is the one it was made for.
            assert_answered(client.get(url, params, **headers), (url, params, headers))  # noqa: B023

        check()


def test_any_form_post_on_any_action_is_answered_without_a_500(client, alice, alices_things, held_tasks):
    client.force_login(alice)
    data = st.fixed_dictionaries(
        {name: st.lists(values, max_size=3) if name in MULTI_FIELDS else values for name in POST_FIELDS}
    )
    headers = st.dictionaries(st.sampled_from(HEADERS[1:]), header_values, max_size=3)
    for route in sweep_routes():
        url = own_url(route, alices_things)

        @PER_ROUTE
        @given(headers=headers, data=data)
        @with_every_field_set_to_each_number(POST_FIELDS, ["HTTP_HX_TRIGGER"])
        def check(headers, data):
            assert_answered(client.post(url, data, **headers), (url, data, headers))  # noqa: B023

        check()
