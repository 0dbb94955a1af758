"""The gallery: own cards only, running cards poll, finished cards stop, constant queries per page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from characters.models import Character
from generations.models import Backend, CostEntry, CostKind, Generation

pytestmark = pytest.mark.django_db



@pytest.fixture
def backend():
    backend = Backend.objects.create(name="Official", protocol="openai_videos", base_url="http://127.0.0.1:9/v1",
                                     api_key="k")
    backend.install_default_prices()
    return backend


def make(owner, backend, prompt="A lighthouse at dawn", status="queued", **extra):
    return Generation.objects.create(owner=owner, backend=backend, prompt=prompt, model="sora-2", seconds="4",
                                     size="720x1280", status=status, **extra)


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
    make(alice, backend, status="failed", error_code="moderation",
         error_message="The prompt was refused by moderation.")
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


def _queries_for_gallery(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("gallery"))
    assert response.status_code == 200
    return len(queries)


def test_the_gallery_costs_the_same_queries_for_10_or_40_generations(client, alice, backend,
                                                                      django_assert_max_num_queries):
    rex = Character.objects.create(owner=alice, name="Rex", handle="rex")
    client.force_login(alice)

    def add(n):
        for i in range(n):
            generation = make(alice, backend, f"Scene {i} with @rex", status="completed")
            generation.characters.add(rex)
            CostEntry.objects.record(kind=CostKind.CHARGE, amount="0.40", backend=backend, owner=alice,
                                     generation=generation)

    add(10)
    with_10 = _queries_for_gallery(client)
    add(30)
    with_40 = _queries_for_gallery(client)

    assert with_10 == with_40
    with django_assert_max_num_queries(with_10):
        response = client.get(reverse("gallery"))
    assert response.text.count('class="card ') == 24
    assert "Page 1 of 2" in response.text


def test_the_second_page_comes_as_a_fragment_for_htmx(client, alice, backend):
    for i in range(30):
        make(alice, backend, f"Number {i}", status="completed")
    client.force_login(alice)

    response = client.get(reverse("gallery"), {"page": 2}, headers={"HX-Request": "true"})

    assert response.text.lstrip().startswith('<section id="gallery"')
    assert response.text.count('class="card ') == 6
