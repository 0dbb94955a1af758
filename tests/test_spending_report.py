"""The spending report: exact to the cent, re-priced elsewhere, projected, exported."""

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import call_command

from generations.billing import pricing
from generations.billing.models import CostEntry, CostKind
from generations.billing.reports import elsewhere, month, projection
from generations.storyboards.models import Scene
from tests.factories import make_dead_backend, make_generation, make_series

pytestmark = pytest.mark.django_db

NOV = datetime(2026, 11, 10, 12, tzinfo=UTC)


@pytest.fixture
def backends():
    official = make_dead_backend("Official", "openai_videos", tier="official")
    agg = make_dead_backend("Aggregator", "task_api", tier="aggregator")
    for b in (official, agg):
        b.prices.update(effective_from=datetime(2026, 1, 1, tzinfo=UTC))
    return official, agg


def video(owner, backend, *, model="sora-2", seconds="4", size="720x1280", refund=False, day=NOV, scene=None):
    """A generation with its estimate and charge (and refund) written the way the pipeline writes them."""
    g = make_generation(
        owner,
        backend,
        prompt="p",
        model=model,
        seconds=seconds,
        size=size,
        status="failed" if refund else "completed",
        created_at=day,
        scene=scene,
    )
    q = pricing.quote(backend, model, seconds, size, at=day)
    with mock.patch("django.utils.timezone.now", return_value=day):  # written on that day
        for kind in [CostKind.ESTIMATE, CostKind.CHARGE] + ([CostKind.REFUND] if refund else []):
            CostEntry.objects.record(
                kind=kind, amount=q.amount, backend=backend, owner=owner, generation=g, price=q.price
            )
    return g


def test_report_totals_agree_with_the_ledger_to_the_cent(alice, bob, backends):
    official, agg = backends
    series = make_series(alice, "Pilot")
    scene = Scene.objects.create(series=series, prompt="p", position=1)
    video(alice, official, seconds="8", scene=scene)  # 0.80
    video(alice, official, model="sora-2-pro", size="1792x1024", seconds="12")  # 6.00
    video(alice, agg, seconds="10")  # 0.12
    video(alice, agg, seconds="10", refund=True)  # 0.12 - 0.12
    video(bob, agg, seconds="15")  # someone else's

    report = month.month_report(alice, 2026, 11)

    assert report.total.charged == Decimal("7.04")
    assert report.total.refunded == Decimal("0.12")
    assert report.net == Decimal("6.92")
    ledger = CostEntry.objects.filter(owner=alice)
    net = sum(e.amount for e in ledger if e.kind == "charge") - sum(e.amount for e in ledger if e.kind == "refund")
    assert report.net == net
    assert sum(line.net for line in report.by["backend"]) == report.net
    assert sum(line.net for line in report.by["model"]) == report.net
    assert {line.label: line.net for line in report.by["model"]} == {
        "sora-2": Decimal("0.92"),
        "sora-2-pro": Decimal("6.00"),
    }
    assert {line.label: line.net for line in report.by["series"]}["Pilot"] == Decimal("0.80")
    assert report.daily[9].label == "2026-11-10" and report.daily[9].net == report.net
    assert len(report.daily) == 30


def test_staff_see_everyone_by_user(alice, bob, backends):
    official, agg = backends
    video(alice, official)
    video(bob, agg, seconds="10")
    report = month.month_report(None, 2026, 11, staff_view=True)
    assert {line.label: line.net for line in report.by["user"]} == {"alice": Decimal("0.40"), "bob": Decimal("0.12")}
    assert "user" not in month.month_report(alice, 2026, 11).by


def test_the_projection_reproduces_the_seeds_table(backends):
    rows = {(r.backend.name, r.model, r.size): r for r in projection.projection(500, 10)}
    sora2 = rows[("Official", "sora-2", "720x1280")]
    pro_tall = rows[("Official", "sora-2-pro", "1024x1792")]
    per_request = rows[("Aggregator", "sora-2", "720x1280")]
    assert (sora2.monthly, sora2.yearly) == (Decimal("500"), Decimal("6000"))
    assert (pro_tall.monthly, pro_tall.yearly) == (Decimal("2500"), Decimal("30000"))
    assert (per_request.monthly, per_request.yearly) == (Decimal("60"), Decimal("720"))


def test_the_month_is_repriced_on_every_other_backend(alice, backends):
    official, agg = backends
    for _ in range(3):
        video(alice, official, seconds="8")  # 3 x $0.80 = $2.40 actually spent

    actual, rows = elsewhere.elsewhere(alice, 2026, 11)

    assert actual == Decimal("2.40")
    by_name = {r.backend.name: r for r in rows}
    assert by_name["Aggregator"].total == Decimal("0.36")
    assert by_name["Aggregator"].multiple == Decimal("0.2")
    assert by_name["Official"].total == Decimal("2.40") and by_name["Official"].multiple == Decimal("1.0")


def test_a_price_change_never_rewrites_past_costs(alice, backends):
    official, _ = backends
    video(alice, official)
    official.prices.create(
        model="sora-2", unit="per_second", amount=Decimal("0.20"), effective_from=datetime(2026, 11, 15, tzinfo=UTC)
    )
    assert month.month_report(alice, 2026, 11).net == Decimal("0.40")
    assert pricing.quote(official, "sora-2", "4", "720x1280").amount == Decimal("0.80")
    assert pricing.quote(official, "sora-2", "4", "720x1280", at=NOV).amount == Decimal("0.40")


def test_csv_and_json_give_the_same_numbers(alice, backends):
    official, agg = backends
    video(alice, official)
    video(alice, agg, seconds="10", refund=True)

    out = io.StringIO()
    call_command("spending", user="alice", month="2026-11", csv=True, stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    out = io.StringIO()
    call_command("spending", user="alice", month="2026-11", json=True, stdout=out)
    data = json.loads(out.getvalue())

    charged = sum(Decimal(r["amount_usd"]) for r in rows if r["kind"] == "charge")
    refunded = sum(Decimal(r["amount_usd"]) for r in rows if r["kind"] == "refund")
    assert f"{charged - refunded:.2f}" == data["net_usd"] == "0.40"
    assert len(rows) == 5  # 2 estimates, 2 charges, 1 refund
