"""The new-generation form: a live estimate, mention errors next to the prompt, one video per form."""

import uuid

import pytest
from django.urls import reverse

from characters.models import Character, CharacterBinding
from generations.models import Backend, CostKind, Generation

pytestmark = pytest.mark.django_db



def make_backend(name, protocol):
    backend = Backend.objects.create(name=name, protocol=protocol, base_url="http://127.0.0.1:9/v1", api_key="k",
                                     tier="official" if protocol == "openai_videos" else "aggregator")
    backend.install_default_prices()
    return backend


@pytest.fixture
def official():
    return make_backend("Official", "openai_videos")


@pytest.fixture
def aggregator():
    return make_backend("Aggregator", "task_api")


def form_data(**overrides):
    data = {"token": uuid.uuid4().hex, "prompt": "A paper boat on a rainy street", "backend": "",
            "model": "sora-2", "seconds": "4", "size": "720x1280"}
    data.update(overrides)
    return data


def test_the_form_offers_what_the_enabled_backends_offer(client, alice, official, aggregator):
    client.force_login(alice)

    response = client.get(reverse("generation_new"))

    assert response.status_code == 200
    assert "Automatic (cheapest that can)" in response.text
    for choice in ['value="sora-2-pro"', 'value="10"', 'value="1792x1024"', f'value="{aggregator.pk}"']:
        assert choice in response.text
    assert 'name="token"' in response.text
    assert 'hx-post="/generations/estimate/"' in response.text
    assert 'hx-disabled-elt="find button[type=submit]"' in response.text


def test_the_form_is_prefilled_from_the_query_string(client, alice, official):
    client.force_login(alice)

    response = client.get(reverse("generation_new"), {"prompt": "A fox again", "backend": official.pk,
                                                      "seconds": "8", "size": "1280x720"})

    assert "A fox again</textarea>" in response.text
    assert f'<option value="{official.pk}" selected>' in response.text
    assert '<option value="8" selected>' in response.text
    assert '<option value="1280x720" selected>' in response.text


def test_the_estimate_shows_each_backends_price(client, alice, official, aggregator):
    client.force_login(alice)
    url = reverse("generation_estimate")

    four_seconds = client.post(url, form_data(seconds="4"), headers={"HX-Request": "true"})
    assert four_seconds.status_code == 200
    assert four_seconds.text.lstrip().startswith('<aside id="estimate"')
    assert "$0.40" in four_seconds.text  # 4 s x $0.10 on the per-second backend
    assert "Aggregator makes sora-2 in 10, 15 seconds, not 4." in four_seconds.text

    ten_seconds = client.post(url, form_data(seconds="10"), headers={"HX-Request": "true"})
    assert "$0.12" in ten_seconds.text  # one request on the aggregator, whatever its length
    assert "automatic choice" in ten_seconds.text


def test_the_estimate_names_an_unknown_mention(client, alice, official):
    client.force_login(alice)

    response = client.post(reverse("generation_estimate"), form_data(prompt="@nobody waves"))

    assert "@nobody" in response.text
    assert "$0.40" in response.text


def test_an_unknown_handle_is_a_form_error_naming_it(client, alice, official):
    client.force_login(alice)

    response = client.post(reverse("generation_new"), form_data(prompt="@nobody walks into the sea"))

    assert response.status_code == 200
    assert "No character called @nobody in your library." in response.text
    assert "field-prompt has-error" in response.text
    assert not Generation.objects.exists()


def test_a_character_not_ready_on_the_chosen_backend_is_named(client, alice, official):
    rex = Character.objects.create(owner=alice, name="Rex", handle="rex")
    CharacterBinding.objects.create(character=rex, backend=official, status="processing")
    client.force_login(alice)

    response = client.post(reverse("generation_new"),
                           form_data(prompt="@rex walks into the sea", backend=official.pk),
                           headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "@rex is processing on Official" in response.text
    assert response.text.lstrip().startswith('<form id="new-generation"')  # the form, re-rendered in place
    assert not Generation.objects.exists()


def test_a_choice_the_backend_does_not_offer_is_an_error_next_to_the_backend(client, alice, official, aggregator):
    client.force_login(alice)

    response = client.post(reverse("generation_new"), form_data(backend=aggregator.pk, seconds="4"))

    assert response.status_code == 200
    assert "field-backend has-error" in response.text
    assert "not 4" in response.text


def test_a_valid_post_creates_one_generation_and_sends_nothing_yet(client, alice, official,
                                                                    django_capture_on_commit_callbacks):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("generation_new"), form_data(backend=official.pk))

    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("generation_detail", args=[generation.pk])
    assert generation.owner == alice and generation.backend == official and generation.status == "queued"
    assert generation.cost_entries.get().kind == CostKind.ESTIMATE
    assert callbacks  # the submit waits for the commit


def test_htmx_posts_are_redirected_with_hx_redirect(client, alice, official, django_capture_on_commit_callbacks):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("generation_new"), form_data(), headers={"HX-Request": "true"})

    generation = Generation.objects.get()
    assert response["HX-Redirect"] == reverse("generation_detail", args=[generation.pk])


def test_the_same_form_sent_twice_starts_one_video(client, alice, official, django_capture_on_commit_callbacks):
    client.force_login(alice)
    data = form_data()

    with django_capture_on_commit_callbacks(execute=False):
        first = client.post(reverse("generation_new"), data)
        second = client.post(reverse("generation_new"), data, headers={"HX-Request": "true"})

    generation = Generation.objects.get()
    assert first.url == reverse("generation_detail", args=[generation.pk])
    assert second["HX-Redirect"] == first.url


def test_a_refused_form_can_be_fixed_and_sent_with_the_same_token(client, alice, official,
                                                                   django_capture_on_commit_callbacks):
    client.force_login(alice)
    data = form_data(prompt="@nobody waves")

    client.post(reverse("generation_new"), data)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("generation_new"), {**data, "prompt": "Somebody waves"})

    assert response.status_code == 302
    assert Generation.objects.get().prompt == "Somebody waves"


def test_with_no_backend_enabled_the_form_says_so(client, alice):
    client.force_login(alice)

    response = client.get(reverse("generation_new"))

    assert response.status_code == 200
    assert "No backend is enabled yet; an admin must add one." in response.text
