"""State of the simulated provider: jobs and characters, scoped per API key.

A key is never stored; rows carry a digest of it (`owner`), which is all scoping needs.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from . import prices, timing
from .triggers import Triggers, from_text

OPENAI = "openai"
TASK = "task"
VEO = "veo"
RUNWAY = "runway"
FAL = "fal"
REPLICATE = "replicate"
PROTOCOLS = [
    (OPENAI, "openai_videos"),
    (TASK, "task_api"),
    (VEO, "gemini_veo"),
    (RUNWAY, "runway"),
    (FAL, "fal_queue"),
    (REPLICATE, "replicate"),
]
# What a job's id starts with on each protocol (Veo's operation name carries it as its last part).
ID_PREFIX = {OPENAI: "video", TASK: "task", VEO: "op", RUNWAY: "task", FAL: "req", REPLICATE: "pred"}


def owner_for(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def honours_idempotency_keys(protocol: str) -> bool:
    """Whether this protocol's simulated provider deduplicates creates by Idempotency-Key
    (SIMULATOR_IDEMPOTENCY_KEYS; OpenAI's shape and the task API by default). One that does not makes a
    second video of a create sent twice, as a provider without the feature would."""
    return protocol in getattr(settings, "SIMULATOR_IDEMPOTENCY_KEYS", [OPENAI, TASK])


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


class InFlightLimit(Exception):
    """This key already has SIMULATOR_MAX_IN_FLIGHT unfinished jobs: answer 429."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"limit {limit}")
        self.limit = limit


class JobQuerySet(models.QuerySet["Job"]):
    def for_owner(self, owner: str, protocol: str) -> JobQuerySet:
        return self.filter(owner=owner, protocol=protocol)

    def in_flight(self, now: datetime | None = None) -> JobQuerySet:
        # Whether a job is finished is a pure function of time, stored as `finishes_at`.
        return self.filter(finishes_at__gt=now or timezone.now())


class JobManager(models.Manager["Job"]):
    def get_queryset(self) -> JobQuerySet:
        return JobQuerySet(self.model, using=self._db)

    def for_owner(self, owner: str, protocol: str) -> JobQuerySet:
        return self.get_queryset().for_owner(owner, protocol)

    def start(
        self,
        *,
        owner: str,
        protocol: str,
        prompt: str,
        seconds: int,
        triggers: Triggers,
        idempotency_key: str = "",
        **fields: object,
    ) -> tuple[Job, bool]:
        """Create a job, or return the one this idempotency key already made; (job, created).

        `idempotency_key` is the key the client sent; it deduplicates only where the protocol honours keys,
        and it is kept on the job either way (the books count creates per key sent). The job's price is
        fixed now, from the simulator's own price list. The cap check and the insert share one transaction:
        on SQLite (IMMEDIATE) that serialises concurrent creates; on PostgreSQL two racing creates may both
        pass the cap, which a stand-in provider can live with.
        """
        mine = self.for_owner(owner, protocol)
        sent_key, idempotency_key = idempotency_key, idempotency_key if honours_idempotency_keys(protocol) else ""
        if idempotency_key:
            existing = mine.filter(idempotency_key=idempotency_key).first()
            if existing:
                return _repeated(existing), False
        prefix = ID_PREFIX[protocol]
        now = timezone.now()
        duration = timing.duration_for(seconds, slow=triggers.slow)
        limit = int(settings.SIMULATOR_MAX_IN_FLIGHT)
        rate = prices.rate_for(protocol, str(fields.get("model", "")), str(fields.get("size", "")))
        try:
            with transaction.atomic():
                if mine.in_flight(now).count() >= limit:
                    raise InFlightLimit(limit)
                job = self.create(
                    id=f"{prefix}_{secrets.token_hex(16)}",
                    owner=owner,
                    protocol=protocol,
                    prompt=prompt,
                    seconds=seconds,
                    triggers=triggers.as_text,
                    flaky_pending=triggers.flaky,
                    idempotency_key=idempotency_key,
                    sent_idempotency_key=sent_key,
                    price_unit=rate.unit,
                    price_amount=rate.amount,
                    created_at=now,
                    duration=duration,
                    finishes_at=timing.finish_time(now, duration, fails=triggers.fail),
                    **fields,
                )
        except IntegrityError:
            # Lost a race with a twin request carrying the same idempotency key.
            return _repeated(mine.get(idempotency_key=idempotency_key)), False
        return job, True


def _repeated(job: Job) -> Job:
    """A create answered with the job its idempotency key made before: counted, not a new job."""
    Job.objects.filter(pk=job.pk).update(repeated_creates=models.F("repeated_creates") + 1)
    return job


class Job(models.Model):
    """One generation, on either protocol; status and progress are derived from the clock."""

    id = models.CharField(primary_key=True, max_length=64)
    owner = models.CharField(max_length=64, db_index=True)
    protocol = models.CharField(max_length=10, choices=PROTOCOLS)
    prompt = models.TextField()
    model = models.CharField(max_length=100, default="sora-2")
    size = models.CharField(max_length=20, default="720x1280")
    seconds = models.PositiveIntegerField(default=4)
    character_ids = models.JSONField(default=list, blank=True)
    remixed_from = models.CharField(max_length=64, blank=True, default="")
    input_reference = models.CharField(
        max_length=500, blank=True, default="", help_text="What was sent as input_reference (a name or URL)."
    )
    # What the client sent beside the prompt, as the protocol names it (model arguments, image names...),
    # and the names of the images it sent (reference images, a first frame): echoed in status answers.
    request = models.JSONField(default=dict, blank=True)
    images = models.JSONField(default=list, blank=True)
    triggers = models.CharField(max_length=100, blank=True, default="")
    flaky_pending = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")  # honoured: unique per owner
    # The books (books.py): the key as the client sent it (honoured or not), the creates answered with this
    # job by its key, and the rate it is billed at (prices.py), fixed when it was created.
    sent_idempotency_key = models.CharField(max_length=255, blank=True, default="", db_index=True)
    repeated_creates = models.PositiveIntegerField(default=0)
    price_unit = models.CharField(
        max_length=12, choices=[(prices.PER_SECOND, "per second"), (prices.PER_REQUEST, "per request")], default=""
    )
    price_amount = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    # Where to call back when the job ends (Replicate's `webhook`, fal's `fal_webhook`): see callbacks.py.
    webhook = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    duration = models.DurationField()
    finishes_at = models.DateTimeField(db_index=True)

    objects = JobManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "protocol", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="simulator_job_unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def trigger_set(self) -> Triggers:
        return from_text(self.triggers)

    def phase(self, now: datetime | None = None) -> timing.Phase:
        return timing.phase_at(self.created_at, self.duration, fails=self.trigger_set.fail, now=now or timezone.now())

    def expires_at(self, phase: timing.Phase) -> datetime | None:
        if phase.status != timing.COMPLETED or phase.finished_at is None:
            return None
        return phase.finished_at + timing.url_ttl()

    def billed(self, now: datetime | None = None) -> Decimal:
        """What this job costs its owner at `now`, the way its provider bills (prices.bill): a cancelled job
        and one refused by moderation after it ran count as failed."""
        phase = self.phase(now)
        cancelled = isinstance(self.request, dict) and bool(self.request.get("canceled_at"))
        failed = phase.status == timing.FAILED or cancelled or self.trigger_set.moderation
        completed = phase.status == timing.COMPLETED and not failed
        return prices.bill(self.price_unit, self.price_amount, self.seconds, completed=completed, failed=failed)

    def claim_flaky_failure(self) -> bool:
        """True exactly once per flaky job, even when two polls race (compare-and-set)."""
        return Job.objects.filter(pk=self.pk, flaky_pending=True).update(flaky_pending=False) == 1

    def asset_dir(self) -> str:
        return f"simulator/{self.id}"

    def as_openai(self, now: datetime | None = None) -> dict[str, object]:
        """The Video object of the OpenAI Videos API."""
        phase = self.phase(now)
        return {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": phase.status,
            "progress": phase.progress,
            "created_at": _unix(self.created_at),
            "completed_at": _unix(phase.finished_at),
            "expires_at": _unix(self.expires_at(phase)),
            "prompt": self.prompt,
            "size": self.size,
            "seconds": str(self.seconds),
            "remixed_from_video_id": self.remixed_from or None,
            "error": FAILURE if phase.status == timing.FAILED else None,
        }


FAILURE = {"code": "video_generation_failed", "message": "The simulated renderer failed halfway through."}


class Character(models.Model):
    """A reusable character; like on real backends, it exists on one protocol and one key only."""

    id = models.CharField(primary_key=True, max_length=64)
    owner = models.CharField(max_length=64, db_index=True)
    protocol = models.CharField(max_length=10, choices=PROTOCOLS)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True, default="")
    source = models.CharField(max_length=500, help_text="Upload name, source URL or task id.")
    clip_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} ({self.name})"

    @classmethod
    def new_id(cls) -> str:
        return f"char_{secrets.token_hex(12)}"

    def as_openai(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "created_at": _unix(self.created_at)}

    def as_task(self) -> dict[str, object]:
        return {
            "character_id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": _unix(self.created_at),
        }


class Fault(models.Model):
    """One failure fault mode injected (faults.py), for the books: what it was, on which call, and whether
    it came before the call was served (nothing done) or after (done, and the answer lost or broken)."""

    BEFORE, AFTER = "before", "after"

    kind = models.CharField(max_length=20)
    moment = models.CharField(max_length=6, choices=[(BEFORE, "before serving"), (AFTER, "after serving")])
    protocol = models.CharField(max_length=10, blank=True, choices=PROTOCOLS)
    endpoint = models.CharField(max_length=60, help_text="The URL name of the call.")
    method = models.CharField(max_length=8)
    is_create = models.BooleanField(default=False)
    owner = models.CharField(max_length=64, blank=True, db_index=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.moment} {self.method} {self.endpoint}"
