"""Fault injection (issue 10): real `qcluster` and pump processes drive hundreds of jobs through three protocols
over real HTTP while the simulated providers fail at random, or while the worker is killed with SIGKILL.

Whatever happens, every job ends with a reason, no video is started twice on a provider, no job is charged
twice, and the studio's ledger agrees with what the providers say they billed (the simulator's own books,
simulator/books.py, kept with its own price list).

The three protocols are the three ways a lost create can be settled:
- `openai_videos` honours idempotency keys: a create whose answer was lost is sent again, and the provider
  answers with the job it made;
- `replicate` has no keys but lists its predictions: the lost job is found there (reconciled);
- `task_api` (set up here as an aggregator that ignores keys, as many do) has neither: the create cannot be
  sent again nor found, so the studio can only say it does not know ("possibly billed").

Run alone with `pytest -m faults -s`; the figures are printed at the end of each test (also without -s).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from generations.billing.models import CostEntry, CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.providers.models import Price, PriceUnit
from generations.states import TERMINAL, Status
from simulator import books
from tests import workers
from tests.factories import make_backend

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# What each backend is asked for: (model, seconds, size), all within its offer.
REQUESTS = {
    "openai_videos": ("sora-2", 4, "720x1280"),
    "task_api": ("sora-2", 10, "720x1280"),
    "replicate": ("kwaivgi/kling-v1.6-standard", 5, "1280x720"),
}
MONEY = (CostKind.CHARGE, CostKind.REFUND)


# --- the setting ---------------------------------------------------------------------------------


@pytest.fixture
def backends(official, aggregator, live_server):
    """The three simulated backends, with room for many jobs at once."""
    aggregator.honours_idempotency_keys = False  # an aggregator without keys (and without a task list)
    replicate = make_backend("Simulated Replicate", "replicate", f"{live_server.url}/simulator/replicate/v1")
    # Replicate publishes no price for these models: the demo price, which its simulator bills too.
    Price.objects.create(backend=replicate, unit=PriceUnit.PER_SECOND, amount=Decimal("0.10"))
    for backend in (official, aggregator, replicate):
        backend.max_in_flight = 40
        backend.save()
    return [official, aggregator, replicate]


@pytest.fixture
def simulated_providers(settings, caplog):
    """The providers as the live server plays them: roomy, and the aggregator ignoring keys. The live server
    logs each 500 and broken pipe the faults cause; they are the point, not news."""
    caplog.set_level(logging.CRITICAL, logger="django.request")
    caplog.set_level(logging.CRITICAL, logger="django.server")
    settings.SIMULATOR_MAX_IN_FLIGHT = 200
    settings.SIMULATOR_IDEMPOTENCY_KEYS = ["openai"]
    settings.SIMULATOR_FAULT_SEED = "issue-10"
    return settings


def start_jobs(owner, backends, count, label):
    """`count` jobs spread over the backends, each with a prompt of its own (so the provider's books can
    tell a video started twice), due at once."""
    started = []
    for number in range(count):
        backend = backends[number % len(backends)]
        model, seconds, size = REQUESTS[backend.protocol]
        prompt = f"{label} {number:03d}: a paper boat on {backend.protocol}"
        started.append(
            lifecycle.start(
                GenerationRequest(owner, prompt=prompt, model=model, seconds=seconds, size=size, backend=backend)
            ).generation
        )
    Generation.objects.filter(pk__in=[g.pk for g in started]).update(next_poll_at=timezone.now())
    return started


def wait_until_all_terminal(timeout):
    def done():
        return not Generation.objects.exclude(status__in=TERMINAL).exists()

    try:
        workers.wait_for(done, timeout, "every job to end")
    except AssertionError:
        stuck = list(Generation.objects.exclude(status__in=TERMINAL).values_list("pk", "status", "backend__protocol"))
        raise AssertionError(f"{len(stuck)} jobs never ended: {stuck[:20]}") from None


# --- what the studio says it owes, next to what the providers billed ------------------------------


@dataclass(frozen=True)
class StudioBooks:
    """What the studio's ledger says about some jobs: money it knows it owes (`net`, charges minus refunds),
    and charges it could not confirm (`possibly_billed`)."""

    net: Decimal
    possibly_billed: Decimal

    def agrees_with(self, billed: Decimal) -> bool:
        """The provider's bill is what the studio knows it owes, or that plus what it marked as possibly billed
        (a create whose answer was lost may have made a video there, or not: the studio cannot tell which)."""
        return billed == self.net or (self.possibly_billed > 0 and billed == self.net + self.possibly_billed)


def studio_books(generations) -> StudioBooks:
    """What the ledger says of these jobs: net (charges minus refunds), and what it holds as possibly billed (a
    create whose answer was lost where the provider cannot be asked ends `unknown`, its estimate possibly billed)."""
    entries = CostEntry.objects.filter(generation__in=generations)
    return StudioBooks(net=entries.net(), possibly_billed=entries.possibly_billed())


def provider_bills(provider_books) -> dict[str, Decimal]:
    """What the providers billed per prompt (each job's prompt is its own)."""
    billed = defaultdict(Decimal)
    for job in provider_books["jobs"]:
        billed[job["prompt"]] += Decimal(job["billed"])
    return billed


def per_job_differences(generations, provider_books):
    """Jobs whose ledger entries and the provider's bill disagree, with what the studio knows of them."""
    billed = provider_bills(provider_books)
    differences = []
    for generation in Generation.objects.filter(pk__in=[g.pk for g in generations]).select_related("backend"):
        ledger = studio_books([generation])
        if not ledger.agrees_with(billed[generation.prompt_sent]):
            differences.append(
                {
                    "generation": generation.pk,
                    "protocol": generation.backend.protocol,
                    "status": generation.status,
                    "error_code": generation.error_code,
                    "remote_id": generation.remote_id,
                    "ledger net": str(ledger.net),
                    "possibly billed": str(ledger.possibly_billed),
                    "provider billed": str(billed[generation.prompt_sent]),
                }
            )
    return differences


# --- the invariants -------------------------------------------------------------------------------


def assert_every_job_ended_with_a_reason(generations):
    ended = Generation.objects.filter(pk__in=[g.pk for g in generations])
    assert ended.count() == len(generations)
    assert not ended.exclude(status__in=TERMINAL).exists()
    unexplained = ended.exclude(status=Status.COMPLETED).filter(error_code="")
    assert not unexplained.exists(), list(unexplained.values("pk", "status"))
    without_video = [g.pk for g in ended.filter(status=Status.COMPLETED) if not g.video or g.video.size == 0]
    assert not without_video, f"completed without a stored video: {without_video}"


def assert_no_video_started_twice(provider_books, generations):
    """The provider's books: no idempotency key and no prompt made more than one job, and every job the
    studio adopted is the one its own prompt made (a video is never adopted by another job)."""
    assert provider_books["duplicates"] == {"idempotency_key": [], "prompt": []}
    by_id = {job["id"]: job for job in provider_books["jobs"]}
    adopted = Generation.objects.filter(pk__in=[g.pk for g in generations]).exclude(remote_id="")
    remote_ids = list(adopted.values_list("remote_id", flat=True))
    assert len(remote_ids) == len(set(remote_ids)), "two jobs adopted one provider video"
    for generation in adopted:
        job = by_id.get(generation.remote_id)
        assert job is not None, f"generation {generation.pk} holds {generation.remote_id}, unknown to the provider"
        assert job["prompt"] == generation.prompt_sent


def assert_nothing_charged_twice(generations):
    entries = CostEntry.objects.filter(generation__in=generations)
    twice = entries.values("generation", "kind").annotate(n=Count("pk")).filter(n__gt=1)
    assert not twice.exists(), list(twice)
    for generation_id, kind in entries.filter(kind=CostKind.REFUND).values_list("generation", "kind"):
        charge = entries.get(generation=generation_id, kind=CostKind.CHARGE)
        refund = entries.get(generation=generation_id, kind=kind)
        assert refund.amount <= charge.amount
    completed = Generation.objects.filter(pk__in=[g.pk for g in generations], status=Status.COMPLETED)
    assert entries.filter(kind=CostKind.CHARGE, generation__in=completed).count() == completed.count()


def assert_the_ledger_matches_the_providers_bill(generations, provider_books):
    """Job by job, the provider billed what the studio's ledger says (or, for a job it marked possibly billed,
    either nothing or that charge); in total, the ledger's net plus what the providers billed for possibly
    billed jobs is the providers' bill."""
    differences = per_job_differences(generations, provider_books)
    ledger, billed = studio_books(generations), Decimal(provider_books["billed"]["total"])
    assert not differences and ledger.net <= billed <= ledger.net + ledger.possibly_billed, (
        f"the ledger's net is ${ledger.net} (+ ${ledger.possibly_billed} possibly billed), the providers billed "
        f"${billed}; {len(differences)} jobs differ: {differences[:25]}"
    )


# --- figures --------------------------------------------------------------------------------------


def figures(title, generations, provider_books, elapsed, extra=()):
    ended = Generation.objects.filter(pk__in=[g.pk for g in generations])
    outcomes = Counter(
        f"{protocol} {status}{' (' + code + ')' if code else ''}"
        for protocol, status, code in ended.values_list("backend__protocol", "status", "error_code")
    )
    faults = provider_books["faults"]
    create_calls = (
        sum(provider_books["creates"].values())
        + sum(provider_books["repeated_creates"].values())
        + sum(n for name, n in faults["on_creates"].items() if name.endswith("before"))
    )
    entries = CostEntry.objects.filter(generation__in=generations)
    ledger, differences = studio_books(generations), per_job_differences(generations, provider_books)
    bills = provider_bills(provider_books)
    unsettled = [
        bills[prompt] for prompt in ended.filter(error_code="submit_unknown").values_list("prompt_sent", flat=True)
    ]
    charges, refunds = (sum(entries.filter(kind=k).values_list("amount", flat=True), Decimal(0)) for k in MONEY)
    lines = [
        f"== {title} ==",
        f"jobs: {len(generations)} in {elapsed:.1f} s ({len(generations) / elapsed:.1f} jobs/s)",
        *[f"  {outcome}: {n}" for outcome, n in sorted(outcomes.items())],
        f"faults injected: {faults['total']} {dict(sorted(faults['by_kind'].items()))}",
        f"  on creates: {faults['on_creates']}",
        f"provider creates (new jobs): {provider_books['creates']}; answered by idempotency key (not new): "
        f"{provider_books['repeated_creates']}; create calls received: {create_calls}",
        f"studio submit attempts beyond the first: {ended.aggregate(n=Sum('attempts'))['n'] or 0}",
        f"ledger: charges ${charges:.2f}, refunds ${refunds:.2f}, net ${ledger.net:.2f}, possibly billed "
        f"${ledger.possibly_billed:.2f}; jobs whose ledger and bill differ: {len(differences)}",
        f"providers billed: {provider_books['billed']}",
        f"creates left unsettled (submit_unknown): {len(unsettled)}, of which the providers billed "
        f"{sum(1 for amount in unsettled if amount)} (${sum(unsettled, Decimal(0)):.2f})",
        *extra,
    ]
    return "\n".join(lines)


def report(capsys, text):
    with capsys.disabled():
        print("\n" + text)


# --- the tests ------------------------------------------------------------------------------------


def test_two_hundred_jobs_through_one_fault_in_five_end_once_charged_once(
    alice, backends, simulated_providers, held_tasks, settings, capsys
):
    settings.SIMULATOR_SPEED = 100  # a job takes 0.1-0.15 s at the provider
    settings.SIMULATOR_FAULT_RATE = 0.2
    settings.SIMULATOR_FAULT_DELAY = 2.5  # a `timeout` answers after the workers' read timeout below
    generations = start_jobs(alice, backends, 200, "Faulty")
    env = workers.worker_env(
        settings,
        Q_WORKERS="4",
        PROVIDER_READ_TIMEOUT="1.5",
        GENERATION_LEASE_SECONDS="10",
        GENERATION_MAX_POLL_INTERVAL="1",
        GENERATION_RECONCILE_SECONDS="2",
        CIRCUIT_COOLDOWN_SECONDS="1",
    )
    began = time.monotonic()
    pump = workers.start("pump", env=env)
    cluster = workers.start("qcluster", env=env)
    try:
        wait_until_all_terminal(timeout=420)
    finally:
        workers.kill(cluster)
        workers.kill(pump)
    elapsed = time.monotonic() - began
    settings.SIMULATOR_FAULT_RATE = 0
    provider_books = books.read()
    report(capsys, figures("200 jobs, 20 % of provider calls failing", generations, provider_books, elapsed))

    faults = provider_books["faults"]
    assert set(faults["by_kind"]) == {"server_error", "rate_limited", "timeout", "malformed", "reset"}
    assert {name.split()[1] for name in faults["on_creates"]} == {"before", "after"}
    assert_every_job_ended_with_a_reason(generations)
    assert_no_video_started_twice(provider_books, generations)
    assert_nothing_charged_twice(generations)
    assert_the_ledger_matches_the_providers_bill(generations, provider_books)


def test_a_worker_killed_with_a_hundred_jobs_in_flight_finishes_them_all_once(
    alice, backends, simulated_providers, held_tasks, settings, capsys
):
    settings.SIMULATOR_SPEED = 0.5  # 18-30 s at the provider: all 100 are there when the worker dies
    generations = start_jobs(alice, backends, 100, "Killed")
    env = workers.worker_env(
        settings,
        Q_WORKERS="4",
        GENERATION_POLL_INTERVAL="2",
        GENERATION_LEASE_SECONDS="5",
        GENERATION_RECONCILE_SECONDS="2",
    )
    ids = [g.pk for g in generations]
    in_flight = [Status.SUBMITTING, Status.SUBMITTED, Status.IN_PROGRESS]
    began = time.monotonic()
    pump = workers.start("pump", env=env)
    cluster = workers.start("qcluster", env=env)
    try:
        workers.wait_for(
            lambda: Generation.objects.filter(pk__in=ids, status__in=in_flight).count() == len(ids),
            120,
            "all 100 jobs to be in flight",
        )
        workers.kill(cluster)  # SIGKILL to the whole process group: workers, monitor, sentinel
        killed_at = time.monotonic() - began
        at_kill = Counter(Generation.objects.filter(pk__in=ids).values_list("status", flat=True))
        submitting = list(Generation.objects.filter(pk__in=ids, status=Status.SUBMITTING).values_list("pk", flat=True))
        cluster = workers.start("qcluster", env=env)
        wait_until_all_terminal(timeout=240)
    finally:
        workers.kill(cluster)
        workers.kill(pump)
    elapsed = time.monotonic() - began
    provider_books = books.read()
    report(
        capsys,
        figures(
            "100 jobs, the worker killed (SIGKILL) with all of them in flight",
            generations,
            provider_books,
            elapsed,
            extra=[
                f"killed after {killed_at:.1f} s, with {dict(at_kill)} (submitting: generations {submitting})",
            ],
        ),
    )

    assert_every_job_ended_with_a_reason(generations)
    assert_no_video_started_twice(provider_books, generations)
    assert_nothing_charged_twice(generations)
    assert_the_ledger_matches_the_providers_bill(generations, provider_books)
    # All finish: only a create the kill interrupted on the provider without keys or a list may end unsettled.
    unfinished = Generation.objects.filter(pk__in=ids).exclude(status=Status.COMPLETED)
    unsettled = set(unfinished.values_list("pk", flat=True))
    assert unsettled <= set(submitting), list(unfinished.values("pk", "status", "error_code", "backend__protocol"))
    assert not unfinished.exclude(backend__protocol="task_api").exists()
