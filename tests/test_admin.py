"""The admin never shows a backend's key, and leaving the key blank keeps it."""

import pytest
from django.urls import reverse

from generations.billing.models import CostEntry, CostKind
from generations.providers.models import Backend
from tests.factories import make_user

pytestmark = pytest.mark.django_db


PLAINTEXT = "sk-live-very-secret-1234"


@pytest.fixture
def admin_client(client):
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    return client


@pytest.fixture
def backend():
    Backend.objects.create(
        name="Official", protocol="openai_videos", base_url="https://api.example.com/v1", api_key=PLAINTEXT
    )
    return Backend.objects.get()  # as loaded: the key is sealed ciphertext


def change_data(backend, **overrides):
    data = {
        "name": backend.name,
        "protocol": backend.protocol,
        "tier": backend.tier,
        "base_url": backend.base_url,
        "api_key": "",
        "enabled": "on",
        "offers": "{}",
        "supports_characters": "on",
        "max_in_flight": "4",
    }
    for prefix in ["prices", "prices-2"]:  # the read-only existing rows, then the new ones
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    data.update(overrides)
    return data


def test_the_change_page_never_shows_the_key(admin_client, backend):
    ciphertext = backend.api_key.token

    response = admin_client.get(reverse("admin:generations_backend_change", args=[backend.pk]))

    assert response.status_code == 200
    assert PLAINTEXT not in response.text
    assert ciphertext not in response.text
    assert 'type="password"' in response.text
    assert "Leave blank to keep the current key." in response.text


def test_the_list_shows_a_masked_key(admin_client, backend):
    response = admin_client.get(reverse("admin:generations_backend_changelist"))

    assert "••••••••" in response.text
    assert PLAINTEXT not in response.text and backend.api_key.token not in response.text


def test_saving_with_a_blank_key_keeps_the_old_key(admin_client, backend):
    response = admin_client.post(
        reverse("admin:generations_backend_change", args=[backend.pk]), change_data(backend, name="Official (renamed)")
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    backend = Backend.objects.get()
    assert backend.name == "Official (renamed)"
    assert backend.key == PLAINTEXT


def test_a_new_key_replaces_the_old_one(admin_client, backend):
    admin_client.post(
        reverse("admin:generations_backend_change", args=[backend.pk]), change_data(backend, api_key="sk-new")
    )

    assert Backend.objects.get().key == "sk-new"


def test_a_new_backend_needs_a_key(admin_client):
    data = change_data(Backend(name="New", protocol="task_api", base_url="https://agg.example/v1"))

    response = admin_client.post(reverse("admin:generations_backend_add"), data)

    assert response.status_code == 200
    assert "Enter the API key for this backend." in response.text
    assert not Backend.objects.exists()


def test_a_price_change_is_a_new_row(admin_client, backend):
    backend.install_default_prices()
    old = backend.prices.get(model="sora-2")
    url = reverse("admin:generations_backend_change", args=[backend.pk])
    page = admin_client.get(url)
    assert 'name="prices-0-amount"' not in page.text  # existing rows are shown, not editable

    data = change_data(backend)
    data.update(
        {
            "prices-TOTAL_FORMS": str(backend.prices.count()),
            "prices-INITIAL_FORMS": str(backend.prices.count()),
            "prices-2-TOTAL_FORMS": "1",
            "prices-2-0-model": "sora-2",
            "prices-2-0-size": "",
            "prices-2-0-unit": "per_second",
            "prices-2-0-amount": "0.08",
            "prices-2-0-effective_from_0": "2030-01-01",
            "prices-2-0-effective_from_1": "00:00:00",
        }
    )
    for i, price in enumerate(backend.prices.all()):
        data.update({f"prices-{i}-id": str(price.pk), f"prices-{i}-backend": str(backend.pk)})
    response = admin_client.post(url, data)

    assert response.status_code == 302
    old.refresh_from_db()
    assert str(old.amount) == "0.100000"
    assert backend.prices.filter(model="sora-2").count() == 2


def test_cost_entries_are_read_only(admin_client, backend, django_user_model):
    entry = CostEntry.objects.record(
        kind=CostKind.CHARGE, amount="0.40", backend=backend, owner=django_user_model.objects.get()
    )

    assert admin_client.get(reverse("admin:generations_costentry_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:generations_costentry_add")).status_code == 403
    change = admin_client.get(reverse("admin:generations_costentry_change", args=[entry.pk]))
    assert change.status_code == 200 and 'name="amount"' not in change.text  # a view, not a form
    assert (
        admin_client.post(reverse("admin:generations_costentry_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert CostEntry.objects.count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "generations_generation",
        "generations_series",
        "characters_character",
        "generations_costentry",
        "generations_backend",
    ],
)
def test_each_admin_list_opens(admin_client, name):
    assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_budgets_are_managed_in_the_admin_with_what_is_committed(client):
    from generations.models import Budget

    admin_user = make_user("root", is_staff=True, is_superuser=True)
    Budget.objects.create(amount="25.00", hard=True)
    client.force_login(admin_user)
    response = client.get("/admin/generations/budget/")
    assert response.status_code == 200
    assert "Hard cap for the whole studio: $25.00/month" in response.text and "$0.00" in response.text
