"""Money through the API: the studio's budgets refuse before anything is sent, and a token's own monthly cap
holds, even under parallel creates."""

from __future__ import annotations

import threading
from decimal import Decimal

import openai
import pytest

from generations.billing.models import Budget, CostEntry
from generations.gateway import caps
from generations.gateway.models import ApiToken
from generations.jobs.models import Generation
from simulator.models import Job
from tests.gateway import pump_running, sdk, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_over_budget_create_is_refused_and_nothing_is_sent(live_server, alice, official, aggregator):
    Budget.objects.create(user=alice, amount=Decimal("0.30"))
    client = sdk(live_server, token_for(alice))

    with pytest.raises(openai.RateLimitError) as refused:
        client.videos.create(prompt="An expensive sunset", model="sora-2", seconds="4")

    assert refused.value.status_code == 429
    assert (refused.value.code, refused.value.type) == ("insufficient_quota", "insufficient_quota")
    assert (
        "cap for alice ($0.30) over by $0.10" in refused.value.message and "Nothing was sent" in refused.value.message
    )
    assert refused.value.response.headers["x-should-retry"] == "false"  # the SDK must not retry it
    assert Generation.objects.count() == 0 and CostEntry.objects.count() == 0
    assert Job.objects.count() == 0  # no provider saw anything


def test_a_tokens_monthly_cap_counts_only_that_tokens_videos(live_server, alice, official):
    capped = sdk(live_server, token_for(alice, "capped", monthly_cap=Decimal("1.00")))
    free = sdk(live_server, token_for(alice, "free"))
    with pump_running():
        done = capped.videos.create_and_poll(prompt="First", seconds="8")  # $0.80, charged
        assert done.status == "completed"
        free.videos.create_and_poll(prompt="Other token's", seconds="8")  # not this token's money

    with pytest.raises(openai.RateLimitError) as refused:
        capped.videos.create(prompt="Second", seconds="4")  # $0.40 more: $1.20
    assert refused.value.code == "insufficient_quota"
    assert "monthly cap of the API token “capped” ($1.00) over by $0.20" in refused.value.message
    assert Generation.objects.count() == 2
    assert caps.committed(ApiToken.objects.get(name="capped")) == Decimal("0.80")
    assert free.videos.create(prompt="Still fine", seconds="4").status == "queued"


def test_a_tokens_cap_holds_under_parallel_creates(live_server, alice, official, held_tasks):
    secret = token_for(alice, "burst", monthly_cap=Decimal("2.00"))  # room for exactly five $0.40 videos
    barrier = threading.Barrier(12)
    made, refused, errors = [], [], []

    def create(i):
        try:
            client = sdk(live_server, secret, timeout=60)
            barrier.wait()
            made.append(client.videos.create(prompt=f"Burst {i}", seconds="4").id)
        except openai.RateLimitError:
            refused.append(i)
        except Exception as exc:  # noqa: BLE001 -- collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    assert (len(made), len(refused)) == (5, 7)
    assert caps.committed(ApiToken.objects.get()) == Decimal("2.00")
