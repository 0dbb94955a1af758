"""The spending page: this month per backend, charges minus refunds, from the ledger."""

from datetime import date

import pytest
from django.urls import reverse

from generations.billing.models import CostEntry, CostKind
from generations.providers.models import Backend
from tests.factories import make_dead_backend, make_generation, make_user

pytestmark = pytest.mark.django_db


def job(owner, backend, *entries):
    generation = make_generation(owner, backend, prompt="x", status="completed")
    for kind, amount in entries:
        CostEntry.objects.record(kind=kind, amount=amount, backend=backend, owner=owner, generation=generation)
    return generation


@pytest.fixture
def ledger(alice, bob):
    official = make_dead_backend("Official", "openai_videos", prices=False)
    aggregator = make_dead_backend("Aggregator", "task_api", prices=False)
    E, C, R = CostKind.ESTIMATE, CostKind.CHARGE, CostKind.REFUND
    job(alice, official, (E, "0.40"), (C, "0.40"))
    job(alice, official, (E, "1.20"), (C, "1.20"))
    job(alice, aggregator, (E, "0.12"), (C, "0.12"))
    job(alice, aggregator, (E, "0.12"), (C, "0.12"), (R, "0.12"))  # failed, refunded
    job(bob, official, (E, "4.00"), (C, "4.00"))


def row(text, backend):
    start = text.index(f'<th scope="row">{backend}</th>')
    return text[start : text.index("</tr>", start)]


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


def test_staff_see_everyones_spending(client, ledger):
    client.force_login(make_user("root", is_staff=True))

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


def test_the_page_has_a_daily_chart_with_a_legend_and_every_breakdown(client, alice, ledger):
    client.force_login(alice)
    response = client.get(reverse("spending"))
    text = response.text
    assert "<svg" in text and "Net spend per day" in text
    assert text.count("<rect") >= 2  # a bar per backend on today's date
    legend = text[text.index('class="legend"') :]
    assert "Official <strong>$1.60</strong>" in legend and "Aggregator <strong>$0.12</strong>" in legend
    for heading in ["By backend", "By model", "By series", "By character"]:
        assert heading in text
    assert "By creator" not in text  # creators do not see others


def test_it_reprices_the_month_elsewhere_and_projects_the_seeds_example(client, alice, ledger):
    for b in Backend.objects.all():
        b.install_default_prices()
    client.force_login(alice)
    text = client.get(reverse("spending")).text
    elsewhere = text[text.index("What it would have cost elsewhere") : text.index('id="projection"')]
    assert "$1.72" in elsewhere  # what was actually paid
    projection = text[text.index('id="projection"') :]
    for amount in ["$500.00", "$6,000.00", "$2,500.00", "$30,000.00", "$60.00", "$720.00"]:
        assert amount in projection


def test_a_bad_projection_is_a_message_not_an_error(client, alice, ledger):
    client.force_login(alice)
    response = client.get(reverse("spending"), {"videos": "lots", "seconds": "-3"})
    assert response.status_code == 200 and "Projection: videos 1–1,000,000" in response.text


def test_budget_bars_show_what_is_committed(client, alice, ledger):
    from generations.models import Budget

    Budget.objects.create(user=alice, amount="1.00")
    client.force_login(alice)
    text = client.get(reverse("spending")).text
    assert "Hard cap for alice" in text and "$1.72 of $1.00 — over by $0.72" in text


def test_the_report_refreshes_only_when_the_ledger_changed(client, alice, ledger):
    client.force_login(alice)
    page = client.get(reverse("spending"))
    version = page.text.split("version=")[1].split('"')[0]
    unchanged = client.get(reverse("spending"), {"version": version}, HTTP_HX_REQUEST="true")
    assert unchanged.status_code == 204

    job(alice, Backend.objects.get(name="Official"), (CostKind.ESTIMATE, "0.80"), (CostKind.CHARGE, "0.80"))
    changed = client.get(reverse("spending"), {"version": version}, HTTP_HX_REQUEST="true")
    assert changed.status_code == 200 and 'id="report"' in changed.text and "<html" not in changed.text
    assert "$2.52" in changed.text


def test_the_month_downloads_as_csv(client, alice, ledger):
    client.force_login(alice)
    response = client.get(reverse("spending"), {"format": "csv"})
    assert response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("day,time,kind,amount_usd,backend")
    assert len(lines) == 1 + 9  # alice's entries only
