"""The gallery: own cards only, live cards with a toast at the end, filters in the URL, keyset pages."""

import json
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generations.billing.models import CostEntry, CostKind
from generations.jobs.models import Generation
from generations.storyboards.models import Scene
from tests.factories import make_character, make_dead_backend, make_generation, make_series

pytestmark = pytest.mark.django_db


def make(owner, backend, prompt="A lighthouse at dawn", status="queued", **extra):
    return make_generation(owner, backend, prompt=prompt, status=status, **extra)


def test_the_gallery_lists_only_my_own_cards(client, alice, bob, backend):
    mine = make(alice, backend, "A lighthouse at dawn", status="completed")
    theirs = make(bob, backend, "A secret submarine", status="completed")
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert response.status_code == 200
    assert f'id="gen-{mine.pk}"' in response.text
    assert "A lighthouse at dawn" in response.text
    assert f'id="gen-{theirs.pk}"' not in response.text
    assert "A secret submarine" not in response.text
    assert "HX-Request" in response["Vary"]


def test_a_running_card_polls_its_own_url(client, alice, backend):
    running = make(alice, backend, status="in_progress", progress=40)
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    card_url = reverse("generation_card", args=[running.pk])
    assert f'hx-get="{card_url}" hx-trigger="every 2s"' in response.text
    assert '<progress max="100" value="40"' in response.text


def test_the_card_of_a_finished_job_stops_polling(client, alice, backend):
    generation = make(alice, backend, status="in_progress", progress=60)
    client.force_login(alice)
    url = reverse("generation_card", args=[generation.pk])

    running = client.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert 'hx-trigger="every 2s"' in running.text
    assert "<html" not in running.text  # a fragment, not the page

    Generation.objects.filter(pk=generation.pk).update(status="completed", progress=100)
    CostEntry.objects.record(kind=CostKind.CHARGE, amount="0.40", backend=backend, owner=alice, generation=generation)
    finished = client.get(url, headers={"HX-Request": "true"})

    assert finished.status_code == 286
    assert f'id="gen-{generation.pk}"' in finished.text
    assert "hx-trigger" not in finished.text
    assert "Completed" in finished.text and "$0.40" in finished.text


def test_a_failed_card_says_why(client, alice, backend):
    make(
        alice, backend, status="failed", error_code="moderation", error_message="The prompt was refused by moderation."
    )
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert "The prompt was refused by moderation." in response.text
    assert "Failed" in response.text


def test_the_card_shows_the_estimate_until_charged(client, alice, backend):
    generation = make(alice, backend, status="queued")
    CostEntry.objects.record(kind=CostKind.ESTIMATE, amount="0.40", backend=backend, owner=alice, generation=generation)
    client.force_login(alice)

    response = client.get(reverse("generation_card", args=[generation.pk]), headers={"HX-Request": "true"})

    assert "~$0.40 est." in response.text


def test_the_last_poll_of_a_card_asks_the_page_for_a_toast(client, alice, backend):
    generation = make(alice, backend, status="in_progress", progress=60)
    client.force_login(alice)
    url = reverse("generation_card", args=[generation.pk])

    running = client.get(url, headers={"HX-Request": "true"})
    assert "HX-Trigger" not in running

    Generation.objects.filter(pk=generation.pk).update(status="failed", error_message="The prompt was refused.")
    failed = client.get(url, headers={"HX-Request": "true"})

    assert failed.status_code == 286
    event = json.loads(failed["HX-Trigger"])["jobFinished"]
    assert event == {
        "id": generation.pk,
        "status": "failed",
        "message": f"Video #{generation.pk} failed: The prompt was refused.",
        "url": reverse("generation_detail", args=[generation.pk]),
    }


def test_a_completed_card_toasts_that_it_is_ready(client, alice, backend):
    generation = make(alice, backend, status="completed", progress=100)
    client.force_login(alice)

    response = client.get(reverse("generation_card", args=[generation.pk]), headers={"HX-Request": "true"})

    assert json.loads(response["HX-Trigger"])["jobFinished"]["message"] == f"Video #{generation.pk} is ready."


def test_a_card_shows_its_characters_avatars_or_initials(client, alice, backend):
    rex = make_character(alice, "rex")
    mo = make_character(alice, "mo")
    mo.avatar.save("avatar.png", ContentFile(b"\x89PNG"), save=True)
    generation = make(alice, backend, "@rex meets @mo", status="completed")
    generation.characters.set([rex, mo])
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert f'src="{reverse("characters:avatar", args=[mo.pk])}"' in response.text
    assert '<span class="avatar avatar-xs initials" aria-hidden="true">R</span>@rex' in response.text


def test_a_finished_card_carries_a_muted_preview_that_loads_nothing_until_hovered(client, alice, backend):
    generation = make(
        alice,
        backend,
        status="completed",
        video="generations/1/x/video.mp4",
        thumbnail="generations/1/x/thumbnail.webp",
    )
    running = make(alice, backend, status="in_progress")
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    card = response.text.split(f'id="gen-{generation.pk}"')[1].split("</article>")[0]
    assert '<video class="preview" muted loop playsinline preload="none" hidden' in card
    assert f'poster="{reverse("generation_thumbnail", args=[generation.pk])}"' in card
    assert f'src="{reverse("generation_video", args=[generation.pk])}"' in card
    running_card = response.text.split(f'id="gen-{running.pk}"')[1].split("</article>")[0]
    assert "<video" not in running_card
    assert "data-active" in running_card  # what the tab title counts


# --- Filters and search ----------------------------------------------------------------------------


@pytest.fixture
def spread(alice, bob, backend):
    """Alice's generations, each one distinct in exactly one way from the plain ones."""
    other = make_dead_backend("Aggregator", "task_api", prices=False)
    rex = make_character(alice, "rex")
    series = make_series(alice, "Rex at sea")
    scene = Scene.objects.create(series=series, prompt="@rex sails")
    now = timezone.now()
    things = {
        "plain": make(alice, backend, "A plain shot", status="completed"),
        "failed": make(alice, backend, "A broken shot", status="failed"),
        "series": make(alice, backend, "A scene shot", status="completed", scene=scene),
        "character": make(alice, backend, "A shot with @rex", status="completed"),
        "backend": make(alice, other, "An aggregated shot", status="completed"),
        "old": make(alice, backend, "An old shot", status="completed", created_at=now - timedelta(days=40)),
        "lighthouse": make(alice, backend, "A LIGHTHOUSE at dusk", status="completed"),
        "running": make(alice, backend, "A running shot", status="in_progress"),
        "bobs": make(bob, backend, "Bob's lighthouse", status="failed"),
    }
    things["character"].characters.add(rex)
    return {"things": things, "rex": rex, "series": series, "other": other, "now": now}


def shown(response, things) -> set[str]:
    return {name for name, generation in things.items() if f'id="gen-{generation.pk}"' in response.text}


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("status", lambda s: {"status": "failed"}, {"failed"}),
        ("queued or running", lambda s: {"status": "active"}, {"running"}),
        ("series", lambda s: {"series": s["series"].pk}, {"series"}),
        ("character", lambda s: {"character": s["rex"].pk}, {"character"}),
        ("backend", lambda s: {"backend": s["other"].pk}, {"backend"}),
        (
            "date range",
            lambda s: {
                "date_from": (s["now"] - timedelta(days=41)).date().isoformat(),
                "date_to": (s["now"] - timedelta(days=39)).date().isoformat(),
            },
            {"old"},
        ),
        (
            "from a date on",
            lambda s: {"date_from": (s["now"] - timedelta(days=1)).date().isoformat()},
            {"plain", "failed", "series", "character", "backend", "lighthouse", "running"},
        ),
        ("search", lambda s: {"q": "lighthouse"}, {"lighthouse"}),
        ("search and status", lambda s: {"q": "shot", "status": "failed"}, {"failed"}),
    ],
)
def test_each_filter_narrows_the_gallery(client, alice, spread, name, params, expected):
    client.force_login(alice)

    response = client.get(reverse("gallery"), params(spread))

    assert response.status_code == 200
    assert shown(response, spread["things"]) == expected, name


def test_without_filters_every_one_of_mine_is_shown(client, alice, spread):
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert shown(response, spread["things"]) == set(spread["things"]) - {"bobs"}


def test_the_filters_keep_their_values_in_the_form(client, alice, spread):
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"q": "lighthouse", "status": "failed", "character": spread["rex"].pk})

    assert 'name="q" value="lighthouse"' in response.text
    assert '<option value="failed" selected>Failed</option>' in response.text
    assert f'<option value="{spread["rex"].pk}" selected>@rex</option>' in response.text
    assert 'hx-push-url="true"' in response.text and 'method="get"' in response.text


def test_the_filters_offer_only_my_own_series_and_characters(client, alice, bob, spread):
    make_series(bob, "Bob's secret series")
    make_character(bob, "zed")
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert "Rex at sea" in response.text and "@rex" in response.text
    assert "Bob's secret series" not in response.text and "@zed" not in response.text


def test_someone_elses_series_in_the_url_is_an_error_next_to_the_filter(client, alice, bob, spread):
    theirs = make_series(bob, "Bob's series")
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"series": theirs.pk})

    assert response.status_code == 200
    assert "field-series has-error" in response.text
    assert "Bob's lighthouse" not in response.text


def test_an_end_date_before_the_start_date_is_said_next_to_it(client, alice, spread):
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})

    assert "field-date_to has-error" in response.text
    assert "The end date is before the start date." in response.text


def test_nothing_matching_says_so(client, alice, spread):
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"q": "zebra"})

    assert "No videos match these filters." in response.text


def test_htmx_filtering_swaps_only_the_list(client, alice, spread):
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"status": "failed"}, headers={"HX-Request": "true"})

    assert response.text.lstrip().startswith('<section id="gallery"')
    assert shown(response, spread["things"]) == {"failed"}


# --- Pagination (keyset: no OFFSET) -------------------------------------------------------------


def add_many(owner, backend, n, prompt="Scene", character=None, start=0):
    """n completed, charged generations, one second apart, newest last."""
    base = timezone.now() - timedelta(days=1)
    for i in range(start, start + n):
        generation = make(owner, backend, f"{prompt} {i}", status="completed", created_at=base + timedelta(seconds=i))
        if character:
            generation.characters.add(character)
        CostEntry.objects.record(
            kind=CostKind.CHARGE, amount="0.40", backend=backend, owner=owner, generation=generation
        )


def load_more_url(html: str) -> str:
    match = re.search(r'<p class="load-more" id="load-more">\s*<a class="button" href="([^"]+)"', html)
    return match and unescape(match.group(1))


def test_the_first_page_shows_24_and_a_load_more_link(client, alice, backend):
    add_many(alice, backend, 30)
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert response.text.count('class="card ') == 24
    assert "Scene 29" in response.text and "Scene 6<" in response.text and "Scene 5<" not in response.text
    more = load_more_url(response.text)
    assert more.startswith("?after=")
    assert 'hx-trigger="revealed, click"' in response.text


def test_the_next_page_continues_where_the_first_stopped(client, alice, backend):
    add_many(alice, backend, 30)
    client.force_login(alice)
    more = load_more_url(client.get(reverse("gallery")).text)

    response = client.get(reverse("gallery") + more)

    assert response.text.count('class="card ') == 6
    assert "Scene 5<" in response.text and "Scene 0<" in response.text and "Scene 6<" not in response.text
    assert load_more_url(response.text) is None
    assert "Back to the newest" in response.text


def test_generations_made_in_the_same_microsecond_are_neither_lost_nor_repeated(client, alice, backend):
    same_time = timezone.now()
    made = {make(alice, backend, f"Twin {i}", status="completed", created_at=same_time).pk for i in range(30)}
    client.force_login(alice)

    first = client.get(reverse("gallery"))
    second = client.get(reverse("gallery") + load_more_url(first.text))

    seen = [int(pk) for pk in re.findall(r'id="gen-(\d+)"', first.text + second.text)]
    assert sorted(seen) == sorted(made)


def test_htmx_load_more_brings_cards_and_the_next_link_only(client, alice, backend):
    add_many(alice, backend, 60)
    client.force_login(alice)
    more = load_more_url(client.get(reverse("gallery")).text)

    response = client.get(reverse("gallery") + more, headers={"HX-Request": "true"})

    assert response.text.lstrip().startswith("<article")
    assert "<section" not in response.text and "<html" not in response.text
    assert response.text.count('class="card ') == 24
    assert load_more_url(response.text)


def test_the_filters_and_search_are_kept_in_the_load_more_link(client, alice, backend):
    rex = make_character(alice, "rex")
    add_many(alice, backend, 30, prompt="Rex dives", character=rex)
    add_many(alice, backend, 30, prompt="Nobody swims", start=30)
    client.force_login(alice)
    params = {
        "q": "dives",
        "character": rex.pk,
        "status": "completed",
        "backend": backend.pk,
        "date_from": "2000-01-01",
        "series": "",
    }

    first = client.get(reverse("gallery"), params)
    more = load_more_url(first.text)
    query = parse_qs(more.lstrip("?"))

    assert query["q"] == ["dives"] and query["character"] == [str(rex.pk)] and query["status"] == ["completed"]
    assert query["backend"] == [str(backend.pk)] and query["date_from"] == ["2000-01-01"]
    assert "series" not in query  # empty filters stay out of the URL
    second = client.get(reverse("gallery") + more)
    assert second.text.count('class="card ') == 6
    assert "Nobody swims" not in first.text + second.text


def test_a_cursor_that_does_not_parse_starts_from_the_top(client, alice, backend):
    add_many(alice, backend, 3)
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"after": "yesterday"})

    assert response.status_code == 200
    assert response.text.count('class="card ') == 3


def _queries(client, url, **headers) -> int:
    cache.clear()  # nothing kept rendered: what a page costs the first time it is seen
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    return len(queries)


def test_a_page_costs_the_same_queries_for_10_or_60_generations_and_on_page_2(
    client, alice, backend, django_assert_num_queries
):
    rex = make_character(alice, "rex")
    series = make_series(alice, "Rex at sea")
    client.force_login(alice)
    filtered = reverse("gallery") + f"?character={rex.pk}&q=Scene&series="

    add_many(alice, backend, 10, character=rex)
    with_10 = _queries(client, filtered)
    add_many(alice, backend, 50, character=rex, start=10)
    with_60 = _queries(client, filtered)
    page_1 = client.get(filtered)
    page_2_url = reverse("gallery") + load_more_url(page_1.text)

    assert with_10 == with_60
    cache.clear()
    with django_assert_num_queries(with_10):
        page_2 = client.get(page_2_url)
    assert page_2.text.count('class="card ') == 24
    # The htmx fragment (no filter form to render) is constant too, whatever page it is.
    assert _queries(client, filtered, HX_Request="true") == _queries(client, page_2_url, HX_Request="true")
    assert series  # a series exists, so the filter's options are really queried


def test_the_gallery_offers_to_export_everything(client, alice):
    client.force_login(alice)

    response = client.get(reverse("gallery"))

    assert f'<form method="post" action="{reverse("export_all")}" data-once>' in response.text
    assert "Export all my work</button>" in response.text


def test_a_finished_card_is_rendered_once_and_again_when_it_changes(client, alice, official_offline):
    from django.utils import timezone

    from generations import cards as studio

    cache.clear()
    done = make_generation(alice, official_offline, status="completed", prompt="A finished boat")
    client.force_login(alice)
    renders = []
    real_get_template = studio.get_template

    def counting(name):
        renders.append(name)
        return real_get_template(name)

    studio.get_template = counting
    try:
        first = client.get(reverse("gallery")).content.decode()
        second = client.get(reverse("gallery")).content.decode()
        assert (
            len(renders) == 1
            and "A finished boat" in first
            and first.count("A finished boat") == second.count("A finished boat")
        )
        type(done).objects.filter(pk=done.pk).update(prompt="A renamed boat", updated_at=timezone.now())
        third = client.get(reverse("gallery")).content.decode()
        assert len(renders) == 2 and "A renamed boat" in third
    finally:
        studio.get_template = real_get_template


def test_a_page_of_finished_cards_is_kept_whole_and_a_changed_card_brings_it_back(client, alice, backend):
    cache.clear()
    add_many(alice, backend, 30)
    client.force_login(alice)

    cold = _queries_kept(client, reverse("gallery"))
    warm = _queries_kept(client, reverse("gallery"))
    newest = Generation.objects.filter(owner=alice).order_by("-created_at").first()
    Generation.objects.filter(pk=newest.pk).update(prompt="A renamed scene", updated_at=timezone.now())
    changed = client.get(reverse("gallery")).text

    assert warm < cold, "the kept page reads no card data (backend, characters, ledger)"
    assert "A renamed scene" in changed and changed.count('class="card ') == 24


def test_a_running_card_on_the_page_is_never_served_from_the_kept_page(client, alice, backend):
    cache.clear()
    add_many(alice, backend, 3)
    running = make(alice, backend, "Still rendering", status="in_progress", progress=10)
    client.force_login(alice)
    client.get(reverse("gallery"))

    Generation.objects.filter(pk=running.pk).update(progress=70)  # a poll moves progress, not always updated_at

    assert 'value="70"' in client.get(reverse("gallery")).text


def test_settling_a_possibly_billed_job_changes_its_kept_card(client, alice, backend):
    cache.clear()
    job = make(alice, backend, "Lost answer", status="unknown")
    CostEntry.objects.record(kind=CostKind.POSSIBLE, amount="0.40", backend=backend, owner=alice, generation=job)
    client.force_login(alice)
    before = client.get(reverse("gallery")).text

    assert CostEntry.objects.settle(job, confirm=True, by="admin")

    after = client.get(reverse("gallery")).text
    assert "$0.40" not in before and "$0.40" in after


def test_the_kept_filters_list_a_series_made_since(client, alice, backend):
    cache.clear()
    add_many(alice, backend, 2)
    client.force_login(alice)
    client.get(reverse("gallery"))

    series = make_series(alice, "Made a moment ago")

    assert f'<option value="{series.pk}">Made a moment ago</option>' in client.get(reverse("gallery")).text


def _queries_kept(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_a_kept_page_still_shows_a_message_meant_for_it(client, alice, backend):
    cache.clear()
    add_many(alice, backend, 30)
    client.force_login(alice)
    client.get(reverse("gallery"))  # kept
    oldest = Generation.objects.filter(owner=alice).order_by("created_at").first()  # not on the first page

    response = client.post(reverse("generation_delete", args=[oldest.pk]), follow=True)

    assert f"Video #{oldest.pk} deleted." in response.text
    assert f"Video #{oldest.pk} deleted." not in client.get(reverse("gallery")).text, "and only once"


def test_a_kept_page_carries_a_csrf_token_for_this_login(alice, backend):
    import re

    from django.test import Client

    cache.clear()
    add_many(alice, backend, 3)
    browser = Client(enforce_csrf_checks=True)
    for _ in range(2):  # a second login rotates the CSRF secret: the page kept for the first must not be served
        browser.force_login(alice)
        browser.get(reverse("gallery"))
        page = browser.get(reverse("gallery")).text
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page)[1]
        exported = browser.post(reverse("export_all"), headers={"X-CSRFToken": token})
        assert exported.status_code != 403


def test_the_filters_choices_read_in_one_statement_are_the_forms_own(alice, bob, backend, django_assert_num_queries):
    from generations import cards
    from generations.forms import GalleryFilterForm

    make_series(alice, "Older"), make_series(alice, "Newer"), make_series(bob, "Not hers")
    make_character(alice, "zed"), make_character(alice, "ada"), make_character(bob, "bob")

    with django_assert_num_queries(1):
        choices = cards.filter_choices(alice)

    form = GalleryFilterForm({}, user=alice)
    for name in ("series", "character", "backend"):
        assert choices[name] == [(str(value), str(label)) for value, label in form.fields[name].choices], name
    assert [label for _, label in choices["series"]] == ["Any series", "Newer", "Older"]
