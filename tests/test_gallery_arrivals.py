"""The gallery picks up videos made elsewhere (another tab, a script through the API) while it is open: its
arrivals poll brings their cards to the top of the list, with the filters of the page."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_generation

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def arrivals_url(html: str) -> str:
    return unescape(re.search(r'id="gallery-arrivals" hidden hx-get="([^"]+)"', html).group(1))


def test_a_video_made_after_the_page_was_shown_arrives_on_top(client, alice, bob, backend):
    earlier = make_generation(alice, backend, prompt="Earlier", created_at=timezone.now() - timedelta(minutes=5))
    client.force_login(alice)
    page = client.get(reverse("gallery"))
    poll = arrivals_url(page.text)

    nothing = client.get(poll, headers=HTMX)
    assert nothing.status_code == 204  # htmx leaves the page alone

    new = make_generation(alice, backend, prompt="Made by a script", status="in_progress")
    make_generation(bob, backend, prompt="Bob's")
    arrived = client.get(poll, headers=HTMX)
    assert arrived.status_code == 200
    assert 'hx-swap-oob="afterbegin:#gallery-cards"' in arrived.text
    assert f'id="gen-{new.pk}"' in arrived.text and f'id="gen-{earlier.pk}"' not in arrived.text
    assert "Bob's" not in arrived.text
    assert 'hx-trigger="every 2s"' in arrived.text  # the new card is live, like any running card
    # The poll moves on: asked again, the same video does not arrive twice.
    assert client.get(arrivals_url(arrived.text), headers=HTMX).status_code == 204


def test_arrivals_keep_the_pages_filters(client, alice, backend):
    make_generation(alice, backend, prompt="Old lighthouse", created_at=timezone.now() - timedelta(minutes=5))
    client.force_login(alice)
    poll = arrivals_url(client.get(reverse("gallery"), {"q": "lighthouse"}).text)
    assert "q=lighthouse" in poll

    make_generation(alice, backend, prompt="A kite")
    assert client.get(poll, headers=HTMX).status_code == 204
    make_generation(alice, backend, prompt="A new lighthouse")
    assert "A new lighthouse" in client.get(poll, headers=HTMX).text


def test_an_empty_gallery_reloads_when_its_first_video_arrives(client, alice, backend):
    client.force_login(alice)
    poll = arrivals_url(client.get(reverse("gallery")).text)
    assert client.get(poll, headers=HTMX).status_code == 204
    make_generation(alice, backend, prompt="The first one")
    assert client.get(poll, headers=HTMX)["HX-Refresh"] == "true"


def test_only_the_first_page_polls_and_a_junk_cursor_brings_nothing(client, alice, backend):
    for i in range(30):
        make_generation(alice, backend, prompt=f"Scene {i}", created_at=timezone.now() - timedelta(minutes=i))
    client.force_login(alice)
    first = client.get(reverse("gallery"))
    assert 'id="gallery-arrivals"' in first.text
    more = unescape(
        re.search(r'<p class="load-more" id="load-more">\s*<a class="button" href="([^"]+)"', first.text)[1]
    )
    assert 'id="gallery-arrivals"' not in client.get(reverse("gallery") + more).text
    assert client.get(reverse("gallery"), {"since": "junk"}, headers=HTMX).status_code == 204
    assert client.get(reverse("gallery"), {"since": "junk"}).status_code == 200  # no htmx: the page itself
