"""What an admin (or a script) saves is checked by the model: the admin shows the error next to the
field, add_backend exits non-zero with one clear line, and a bad value already stored breaks no page."""

import logging
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from generations.billing.models import Budget
from generations.providers.models import Backend, Price
from tests.factories import make_dead_backend, make_user
from tests.test_admin import change_data

pytestmark = pytest.mark.django_db

MALFORMED = [
    [1, 2],
    "sora-2",
    7,
    {"sora-2": "4 s, 720x1280"},
    {"sora-2": {"seconds": 4, "sizes": ["720x1280"]}},
    {"sora-2": {"seconds": [4, 8], "sizes": ["720x1280"]}},
    {"sora-2": {"seconds": ["-4"], "sizes": ["720x1280"]}},
    {"sora-2": {"seconds": [], "sizes": ["720x1280"]}},
    {"sora-2": {"seconds": ["4"], "sizes": "720x1280"}},
    {"sora-2": {"seconds": ["4"], "sizes": ["big"]}},
    {"sora-2": {"seconds": ["4"]}},
    {"sora-2": {"seconds": ["4"], "sizes": ["720x1280"], "size": ["720x1280"]}},
    {"": {"seconds": ["4"], "sizes": ["720x1280"]}},
]


@pytest.fixture
def admin_client(client):
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    return client


def test_the_actual_shape_of_offers_is_accepted():
    backend = Backend(
        name="B",
        protocol="openai_videos",
        base_url="https://api.example.com/v1",
        api_key="k",
        offers={"sora-2": {"seconds": ["4", "12"], "sizes": ["720x1280", "1792x1024"]}},
    )
    backend.full_clean()


@pytest.mark.parametrize("offers", MALFORMED)
def test_the_model_refuses_offers_of_the_wrong_shape(offers):
    backend = Backend(
        name="B", protocol="openai_videos", base_url="https://api.example.com/v1", api_key="k", offers=offers
    )
    with pytest.raises(ValidationError) as exc:
        backend.full_clean()
    assert "offers" in exc.value.message_dict


@pytest.mark.parametrize("offers", ["[1, 2]", '{"sora-2": {"seconds": [4], "sizes": ["720x1280"]}}'])
def test_the_admin_shows_an_error_for_offers_of_the_wrong_shape(admin_client, backend, offers):
    before = Backend.objects.get().offers
    response = admin_client.post(
        reverse("admin:generations_backend_change", args=[backend.pk]), change_data(backend, offers=offers)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["offers"]
    assert Backend.objects.get().offers == before


def test_the_admin_refuses_a_negative_price(admin_client, backend):
    data = change_data(backend)
    data.update(
        {
            "prices-2-TOTAL_FORMS": "1",
            "prices-2-0-model": "",
            "prices-2-0-size": "",
            "prices-2-0-unit": "per_request",
            "prices-2-0-amount": "-0.50",
            "prices-2-0-effective_from_0": "2026-01-01",
            "prices-2-0-effective_from_1": "00:00:00",
        }
    )
    response = admin_client.post(reverse("admin:generations_backend_change", args=[backend.pk]), data)
    assert response.status_code == 200 and "A price cannot be negative." in response.text
    assert not Price.objects.filter(amount__lt=0).exists()


def test_the_admin_refuses_a_negative_budget(admin_client):
    response = admin_client.post(reverse("admin:generations_budget_add"), {"amount": "-5", "hard": "on"})
    assert response.status_code == 200 and "A budget cannot be negative." in response.text
    assert not Budget.objects.exists()


def test_add_backend_refuses_malformed_offers_with_one_clear_line():
    with pytest.raises(CommandError) as exc:
        call_command(
            "add_backend",
            "X",
            protocol="task_api",
            base_url="https://agg.example/v1",
            api_key="k",
            offers='{"sora-2": {"seconds": [10], "sizes": ["720x1280"]}}',
            stdout=StringIO(),
        )
    assert "offers" in str(exc.value) and "\n" not in str(exc.value)
    assert not Backend.objects.exists()
    with pytest.raises(CommandError, match="not JSON"):
        call_command(
            "add_backend",
            "X",
            protocol="task_api",
            base_url="https://agg.example/v1",
            api_key="k",
            offers="{sora-2",
            stdout=StringIO(),
        )


def test_add_backend_takes_well_formed_offers():
    call_command(
        "add_backend",
        "X",
        protocol="task_api",
        base_url="https://agg.example/v1",
        api_key="k",
        offers='{"sora-2": {"seconds": ["10"], "sizes": ["1280x720"]}}',
        stdout=StringIO(),
    )
    assert Backend.objects.get().offers == {"sora-2": {"seconds": ["10"], "sizes": ["1280x720"]}}


def test_the_command_line_exits_non_zero_on_a_refused_value(capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as exc:
        execute_from_command_line(
            [
                "manage.py",
                "add_backend",
                "X",
                "--protocol",
                "task_api",
                "--base-url",
                "https://agg.example/v1",
                "--api-key",
                "k",
                "--offers",
                '{"sora-2": "all"}',
            ]
        )
    assert exc.value.code != 0
    error = capsys.readouterr().err.strip()
    assert error.startswith("CommandError: offers: Model 'sora-2'") and "\n" not in error


# --- A bad value already stored (saved before validation existed, or around it) ----------------


@pytest.fixture
def good(backend):
    return backend


@pytest.fixture
def broken(good):
    return make_dead_backend("Broken", "task_api")


@pytest.mark.parametrize("offers", MALFORMED)
def test_a_backend_with_malformed_offers_is_skipped_by_every_page(client, alice, good, broken, offers, caplog):
    Backend.objects.filter(pk=broken.pk).update(offers=offers)  # around validation, as old data would be
    client.force_login(alice)
    offer = {"prompt": "A paper boat", "model": "sora-2", "seconds": "4", "size": "720x1280"}
    with caplog.at_level(logging.WARNING, logger="generations"):
        for response in [
            client.get("/generations/new/"),
            client.get("/series/"),
            client.get("/spending/"),
            client.post("/generations/estimate/", offer),
            client.post("/generations/new/choices/", {"backend": broken.pk}),
            client.post("/series/", {"title": "S", **offer}),
        ]:
            assert response.status_code in (200, 302), response.status_code
        estimate = client.post("/generations/estimate/", offer).text
    assert "Broken offers nothing until an admin fixes its offers" in estimate
    assert "Automatic routing would use Official" in estimate
    assert any("Broken" in r.getMessage() and "offers" in r.getMessage() for r in caplog.records)
    assert "malformed" not in client.get("/generations/new/").text  # the note is for staff


def test_staff_see_a_note_naming_the_malformed_backend(client, good, broken):
    Backend.objects.filter(pk=broken.pk).update(offers={"sora-2": {"seconds": 4}})
    client.force_login(make_user("root", is_staff=True))
    for url in ["/generations/new/", "/series/"]:
        text = client.get(url).text
        assert "Broken offers nothing: its offers are malformed" in text, url


def test_a_negative_price_saved_around_validation_is_never_quoted(client, alice, good):
    Price.objects.filter(backend=good, model="sora-2").update(amount=-1)
    client.force_login(alice)
    estimate = client.post(
        "/generations/estimate/", {"prompt": "x", "model": "sora-2", "seconds": "4", "size": "720x1280"}
    ).text
    assert "-$" not in estimate and "$-" not in estimate
    assert "negative price" in estimate
