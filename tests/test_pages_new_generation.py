"""The new-generation form: a live estimate, mention errors next to the prompt, one video per form."""

import re
import uuid

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from characters.models import CharacterBinding
from generations.billing.models import CostKind
from generations.jobs.models import Generation
from tests.factories import make_character

pytestmark = pytest.mark.django_db


def form_data(**overrides):
    data = {
        "token": uuid.uuid4().hex,
        "prompt": "A paper boat on a rainy street",
        "backend": "",
        "model": "sora-2",
        "seconds": "4",
        "size": "720x1280",
    }
    data.update(overrides)
    return data


def test_the_form_offers_what_the_enabled_backends_offer(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    response = client.get(reverse("generation_new"))

    assert response.status_code == 200
    assert "Automatic (by the routing policy)" in response.text
    for choice in ['value="sora-2-pro"', 'value="4"', 'value="10"', f'value="{aggregator_offline.pk}"']:
        assert choice in response.text
    assert 'value="1792x1024"' not in response.text  # a sora-2-pro size; sora-2 is chosen
    assert 'name="token"' in response.text
    assert 'hx-post="/generations/estimate/"' in response.text
    assert 'hx-disabled-elt="find button[type=submit]"' in response.text


def test_the_form_is_prefilled_from_the_query_string(client, alice, official_offline):
    client.force_login(alice)

    response = client.get(
        reverse("generation_new"),
        {"prompt": "A fox again", "backend": official_offline.pk, "seconds": "8", "size": "1280x720"},
    )

    assert "A fox again</textarea>" in response.text
    assert f'<option value="{official_offline.pk}" selected>' in response.text
    assert '<option value="8" selected>' in response.text
    assert '<option value="1280x720" selected>' in response.text


def test_the_estimate_shows_each_backends_price(client, alice, official_offline, aggregator_offline):
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


def test_the_estimate_names_an_unknown_mention(client, alice, official_offline):
    client.force_login(alice)

    response = client.post(reverse("generation_estimate"), form_data(prompt="@nobody waves"))

    assert "@nobody" in response.text
    assert "$0.40" in response.text


def test_an_unknown_handle_is_a_form_error_naming_it(client, alice, official_offline):
    client.force_login(alice)

    response = client.post(reverse("generation_new"), form_data(prompt="@nobody walks into the sea"))

    assert response.status_code == 200
    assert "No character called @nobody in your library." in response.text
    assert "field-prompt has-error" in response.text
    assert not Generation.objects.exists()


def test_a_character_that_could_not_be_registered_on_the_chosen_backend_is_named(client, alice, official_offline):
    rex = make_character(alice, "rex")
    CharacterBinding.objects.create(character=rex, backend=official_offline, status="failed")
    client.force_login(alice)

    response = client.post(
        reverse("generation_new"),
        form_data(prompt="@rex walks into the sea", backend=official_offline.pk),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert "@rex could not be registered on Official" in response.text
    assert response.text.lstrip().startswith('<form id="new-generation"')  # the form, re-rendered in place
    assert not Generation.objects.exists()


def test_a_choice_the_backend_does_not_offer_is_an_error_next_to_the_backend(
    client, alice, official_offline, aggregator_offline
):
    client.force_login(alice)

    response = client.post(reverse("generation_new"), form_data(backend=aggregator_offline.pk, seconds="4"))

    assert response.status_code == 200
    assert "field-backend has-error" in response.text
    assert "not 4" in response.text


def test_a_valid_post_creates_one_generation_and_sends_nothing_yet(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("generation_new"), form_data(backend=official_offline.pk))

    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("generation_detail", args=[generation.pk])
    assert generation.owner == alice and generation.backend == official_offline and generation.status == "queued"
    assert generation.cost_entries.get().kind == CostKind.ESTIMATE
    assert callbacks  # the submit waits for the commit


def test_htmx_posts_are_redirected_with_hx_redirect(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("generation_new"), form_data(), headers={"HX-Request": "true"})

    generation = Generation.objects.get()
    assert response["HX-Redirect"] == reverse("generation_detail", args=[generation.pk])


def test_the_same_form_sent_twice_starts_one_video(client, alice, official_offline, django_capture_on_commit_callbacks):
    client.force_login(alice)
    data = form_data()

    with django_capture_on_commit_callbacks(execute=False):
        first = client.post(reverse("generation_new"), data)
        second = client.post(reverse("generation_new"), data, headers={"HX-Request": "true"})

    generation = Generation.objects.get()
    assert first.url == reverse("generation_detail", args=[generation.pk])
    assert second["HX-Redirect"] == first.url


def test_a_refused_form_can_be_fixed_and_sent_with_the_same_token(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
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


# --- Choices as the chosen backend allows ----------------------------------------------------------


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.DOTALL).group(0)
    return re.findall(r'<option value="([^"]*)"', select)


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.DOTALL).group(0)
    return re.search(r'<option value="([^"]*)" selected>', select).group(1)


def test_choosing_a_backend_offers_only_what_it_makes(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    response = client.post(
        reverse("generation_choices"),
        form_data(backend=aggregator_offline.pk, seconds="4"),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="offer-fields"')
    assert options(response.text, "model") == ["sora-2"]
    assert options(response.text, "seconds") == ["10", "15"]
    assert options(response.text, "size") == ["720x1280", "1280x720"]
    assert selected(response.text, "seconds") == "10"  # 4 s is not made there: the nearest choice it has


def test_the_estimate_comes_along_with_the_new_choices(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    response = client.post(reverse("generation_choices"), form_data(backend=aggregator_offline.pk, seconds="4"))

    estimate = response.text.split('<aside id="estimate"')[1]
    assert estimate.startswith(
        ' class="panel estimate" aria-live="polite" aria-label="Cost estimate" hx-swap-oob="true"'
    )
    assert "your choice" in estimate and "$0.12" in estimate  # priced at 10 s, the length now chosen


def test_automatic_offers_every_backends_choices(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    response = client.post(reverse("generation_choices"), form_data(backend=""))

    assert options(response.text, "model") == ["sora-2", "sora-2-pro"]
    assert options(response.text, "seconds") == ["4", "8", "10", "12", "15"]
    assert selected(response.text, "seconds") == "4"


def test_the_larger_sizes_come_with_the_model_that_makes_them(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    pro = client.post(
        reverse("generation_choices"), form_data(backend=official_offline.pk, model="sora-2-pro", size="1792x1024")
    )
    plain = client.post(
        reverse("generation_choices"), form_data(backend=official_offline.pk, model="sora-2", size="1792x1024")
    )

    assert "1792x1024" in options(pro.text, "size") and selected(pro.text, "size") == "1792x1024"
    assert options(plain.text, "size") == ["720x1280", "1280x720"]
    assert selected(plain.text, "size") == "720x1280"
    assert options(plain.text, "seconds") == ["4", "8", "12"]


def test_a_model_the_new_backend_lacks_falls_back_to_one_it_has(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    response = client.post(reverse("generation_choices"), form_data(backend=aggregator_offline.pk, model="sora-2-pro"))

    assert options(response.text, "model") == ["sora-2"]
    assert selected(response.text, "model") == "sora-2"


def test_the_form_is_wired_to_re_offer_choices_when_the_backend_or_model_changes(client, alice, official_offline):
    client.force_login(alice)

    response = client.get(reverse("generation_new"))

    assert response.text.count(f'hx-post="{reverse("generation_choices")}" hx-trigger="change"') == 2
    assert 'hx-target="#offer-fields"' in response.text
    # The estimate, for the rest: studio.js sends `estimate` on a change outside [data-offer-source].
    assert 'data-estimate hx-post="/generations/estimate/"' in response.text
    assert 'hx-trigger="estimate, keyup changed delay:400ms from:#id_prompt"' in response.text


def test_a_form_prefilled_with_a_backend_offers_only_its_choices(client, alice, official_offline, aggregator_offline):
    client.force_login(alice)

    response = client.get(reverse("generation_new"), {"backend": aggregator_offline.pk, "seconds": "15"})

    assert options(response.text, "seconds") == ["10", "15"]
    assert selected(response.text, "seconds") == "15"


# --- @ autocomplete ----------------------------------------------------------------------------------


def test_the_autocomplete_lists_my_characters_starting_with_what_i_typed(client, alice, bob):
    mo = make_character(alice, "mo", name="Mo the cat")
    mo.avatar.save("avatar.png", ContentFile(b"\x89PNG"), save=True)
    make_character(alice, "moana")
    make_character(alice, "rex")
    make_character(bob, "mog")
    client.force_login(alice)

    response = client.get(reverse("generation_mentions"), {"q": "mo"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<ul id="mention-listbox" class="mention-list" role="listbox"')
    assert re.findall(r'data-handle="(\w+)"', response.text) == ["mo", "moana"]
    assert 'role="option" aria-selected="false"' in response.text
    assert f'src="{reverse("characters:avatar", args=[mo.pk])}"' in response.text
    assert '<span class="avatar avatar-sm initials" aria-hidden="true">M</span>' in response.text  # Moana
    assert "@mog" not in response.text and "@rex" not in response.text


def test_a_bare_at_sign_lists_all_my_characters(client, alice):
    for handle in ["ann", "bea", "cid"]:
        make_character(alice, handle)
    client.force_login(alice)

    response = client.get(reverse("generation_mentions"), {"q": ""})

    assert re.findall(r'data-handle="(\w+)"', response.text) == ["ann", "bea", "cid"]


def test_nothing_matching_gives_an_empty_listbox(client, alice):
    make_character(alice, "rex")
    client.force_login(alice)

    response = client.get(reverse("generation_mentions"), {"q": "zz"})

    assert 'role="option"' not in response.text


def test_the_prompt_is_wired_for_the_autocomplete(client, alice, official_offline):
    client.force_login(alice)

    response = client.get(reverse("generation_new"))

    assert f'data-mentions-url="{reverse("generation_mentions")}"' in response.text
    assert (
        '<ul id="mention-listbox" class="mention-list" role="listbox" aria-label="Your characters" hidden>'
        in response.text
    )
