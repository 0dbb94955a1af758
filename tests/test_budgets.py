"""Monthly caps: a hard cap refuses before anything is sent and holds under parallel submissions."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from generations.billing import budgets
from generations.billing.models import Budget, CostEntry
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation

pytestmark = pytest.mark.django_db(transaction=True)


def start(owner, backend, prompt="x"):
    return lifecycle.start(
        GenerationRequest(owner, prompt=prompt, model="sora-2", seconds=4, size="720x1280", backend=backend)
    )


def test_a_hard_cap_refuses_the_job_naming_the_cap_and_the_overshoot(alice, official, held_tasks):
    Budget.objects.create(user=alice, amount=Decimal("1.00"))
    start(alice, official)
    start(alice, official)  # $0.80 committed

    with pytest.raises(lifecycle.GenerationRefused) as exc:
        start(alice, official)

    assert "cap for alice ($1.00) over by $0.20" in str(exc.value)
    assert Generation.objects.count() == 2 and len(held_tasks) == 2  # one advance each; nothing for the third


def test_a_soft_cap_only_warns(alice, official, held_tasks):
    Budget.objects.create(backend=official, amount=Decimal("0.50"), hard=False)
    first = start(alice, official)
    second = start(alice, official)
    assert first.warnings == []
    # A backend's cap counts every creator's spending, so a creator is not told its amount or the overshoot.
    assert second.warnings == ["This $0.40 video would take the monthly soft cap on Simulated official over."]


def test_refunds_give_the_money_back_to_the_budget(alice, aggregator):
    from tests.conftest import drive

    cap = Budget.objects.create(amount=Decimal("0.12"))
    failed = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="Boom #fail", model="sora-2", seconds=10, size="720x1280", backend=aggregator
            )
        ).generation
    )
    assert failed.status == "failed"
    assert budgets.committed(cap) == Decimal("0")
    lifecycle.start(
        GenerationRequest(alice, prompt="Fine", model="sora-2", seconds=10, size="720x1280", backend=aggregator)
    )


def test_a_cap_holds_under_50_parallel_submissions(alice, official, held_tasks):
    Budget.objects.create(user=alice, amount=Decimal("4.00"))  # room for exactly ten $0.40 videos
    barrier = threading.Barrier(50)
    accepted, refused, errors = [], [], []

    def submit(i):
        try:
            barrier.wait()
            start(alice, official, f"Parallel {i}")
            accepted.append(i)
        except lifecycle.GenerationRefused:
            refused.append(i)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert not errors, errors[:3]
    assert len(accepted) == 10 and len(refused) == 40
    assert Generation.objects.count() == 10
    assert CostEntry.objects.filter(kind="estimate").count() == 10
