"""The spending page: this month per backend, charges minus refunds, from the ledger."""

from datetime import date

import pytest
from django.urls import reverse

from generations.models import Backend, CostEntry, CostKind, Generation

pytestmark = pytest.mark.django_db



def make_backend(name, protocol):
    return Backend.objects.create(name=name, protocol=protocol, base_url="http://127.0.0.1:9/v1", api_key="k")


def job(owner, backend, *entries):
    generation = Generation.objects.create(owner=owner, backend=backend, prompt="x", model="sora-2", seconds="4",
                                           size="720x1280", status="completed")
    for kind, amount in entries:
        CostEntry.objects.record(kind=kind, amount=amount, backend=backend, owner=owner, generation=generation)
    return generation


@pytest.fixture
def ledger(alice, bob):
    official, aggregator = make_backend("Official", "openai_videos"), make_backend("Aggregator", "task_api")
    E, C, R = CostKind.ESTIMATE, CostKind.CHARGE, CostKind.REFUND
    job(alice, official, (E, "0.40"), (C, "0.40"))
    job(alice, official, (E, "1.20"), (C, "1.20"))
    job(alice, aggregator, (E, "0.12"), (C, "0.12"))
    job(alice, aggregator, (E, "0.12"), (C, "0.12"), (R, "0.12"))  # failed, refunded
    job(bob, official, (E, "4.00"), (C, "4.00"))


def row(text, backend):
    start = text.index(f'<th scope="row">{backend}</th>')
    return text[start:text.index("</tr>", start)]


def test_it_shows_this_months_spending_per_backend(client, alice, ledger):
    client.force_login(alice)

    response = client.get(reverse("spending"))

    assert response.status_code == 200
    official, aggregator = row(response.text, "Official"), row(response.text, "Aggregator")
    assert "$1.60" in official and ">2<" in official  # bob's $4.00 is not alice's
    for amount in ["$0.24", "$0.12"]:  # charged, refunded, net $0.12
        assert amount in aggregator
    total = row(response.text, "Total")
    assert "$1.84" in total and "$0.12" in total and "$1.72" in total and ">4<" in total
    assert "$4.00" not in response.text


def test_staff_see_everyones_spending(client, django_user_model, ledger):
    client.force_login(django_user_model.objects.create_user("root", password="x", is_staff=True))

    response = client.get(reverse("spending"))

    assert "$5.60" in row(response.text, "Official")
    assert "By creator" in response.text and "$4.00" in row(response.text, "bob")


def test_another_month_can_be_empty(client, alice, ledger):
    client.force_login(alice)

    response = client.get(reverse("spending"), {"month": "2001-01"})

    assert "Spending — 2001-01" in response.text
    assert "Nothing spent in 2001-01." in response.text


def test_a_bad_month_is_a_friendly_message(client, alice, ledger):
    client.force_login(alice)

    response = client.get(reverse("spending"), {"month": "last-tuesday"})

    assert response.status_code == 200
    assert "is not a month; write it as YYYY-MM" in response.text
    today = date.today()
    assert f"Spending — {today:%Y-%m}" in response.text
