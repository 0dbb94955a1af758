"""A cap shared with other creators (the studio's, a backend's) tells a creator whether room is left,
never what the others spent: not on the spending page, its partial, the CSV, the JSON, nor in a refusal."""

import json
from csv import DictReader
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from generations.billing.models import Budget, CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from tests.factories import make_user
from tests.test_pages_spending import job, ledger  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

# What bob's $4.00 would give away: itself, the studio's and Official's totals, what is left under
# each shared cap, and the caps themselves (cap minus room left is the studio's spend).
BOBS = ["4.00", "5.72", "5.60", "4.28", "1.40", "10.00", "7.00"]


@pytest.fixture
def shared_caps(ledger):  # noqa: F811
    from generations.models import Backend

    Budget.objects.create(amount=Decimal("10.00"), hard=True)  # whole studio: $5.72 committed
    Budget.objects.create(backend=Backend.objects.get(name="Official"), amount=Decimal("7.00"), hard=False)
    Budget.objects.create(user_id=None, backend=None, amount=Decimal("10.00"), hard=False)


def assert_nothing_of_bobs(text):
    for amount in BOBS:
        assert amount not in text, amount


def test_a_creators_spending_page_shows_shared_caps_without_anyones_figures(client, alice, shared_caps):
    client.force_login(alice)
    page = client.get(reverse("spending")).text
    assert "Hard cap for the whole studio" in page and "Soft cap on Official" in page
    assert "Room left" in page and "$1.72" in page  # her own net is hers to see
    assert_nothing_of_bobs(page)
    partial = client.get(reverse("spending"), HTTP_HX_REQUEST="true").text
    assert 'id="report"' in partial and "Room left" in partial
    assert_nothing_of_bobs(partial)
    csv = b"".join(client.get(reverse("spending"), {"format": "csv"}).streaming_content).decode()
    rows = list(DictReader(StringIO(csv)))
    assert rows and {row["user"] for row in rows} == {"alice"}
    assert_nothing_of_bobs(" ".join(row["amount_usd"] for row in rows))


def test_a_nearly_used_shared_cap_says_so_without_a_figure(client, alice, bob, shared_caps):
    from generations.models import Backend

    job(bob, Backend.objects.get(name="Official"), (CostKind.CHARGE, "3.00"))  # studio $8.72 of $10: 87 %
    client.force_login(alice)
    page = client.get(reverse("spending")).text
    assert "Nearly reached" in page and "8.72" not in page and "87%" not in page and 'value="87"' not in page


def test_the_command_for_one_creator_shows_none_of_the_others(alice, shared_caps):
    out = StringIO()
    call_command("spending", user="alice", json=True, stdout=out)
    report = json.loads(out.getvalue())
    assert report["net_usd"] == "1.72"
    assert_nothing_of_bobs(out.getvalue())


def test_staff_still_see_every_figure_of_a_shared_cap(client, shared_caps):
    client.force_login(make_user("root", is_staff=True))
    page = client.get(reverse("spending")).text
    assert "$5.72 of $10.00" in page and "$5.60 of $7.00" in page


def test_a_refusal_by_a_shared_cap_names_the_cap_not_what_others_spent(alice, bob, backend, held_tasks):
    Budget.objects.create(amount=Decimal("1.00"))
    job(bob, backend, (CostKind.CHARGE, "0.90"))
    with pytest.raises(lifecycle.GenerationRefused) as exc:
        lifecycle.start(
            GenerationRequest(alice, prompt="x", model="sora-2", seconds=4, size="720x1280", backend=backend)
        )
    message = str(exc.value)
    assert "hard cap for the whole studio" in message and "Nothing was sent" in message
    assert "$0.40 video" in message  # her own video's price is hers to know
    for figure in ["0.90", "1.00", "0.30"]:
        assert figure not in message


def test_a_soft_warning_from_a_shared_cap_shows_figures_only_to_staff(alice, backend, held_tasks):
    Budget.objects.create(backend=backend, amount=Decimal("0.50"), hard=False)
    root = make_user("root", is_staff=True)

    def start(owner):
        return lifecycle.start(
            GenerationRequest(owner, prompt="x", model="sora-2", seconds=4, size="720x1280", backend=backend)
        )

    start(root)
    creator = start(alice).warnings[0]
    assert "soft cap on Official" in creator and "$0.50" not in creator and "$0.30" not in creator
    staff = start(root).warnings[0]
    assert "soft cap on Official ($0.50) over by $0.70" in staff
