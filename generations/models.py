"""Backends, prices, series and scenes, generations and the cost ledger."""

from __future__ import annotations

import copy
import logging
import re
import uuid
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from sora_studio.fields import EncryptedTextField, reveal

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def money(value) -> Decimal:
    """USD as Decimal, kept to 6 places in the ledger (prices like $0.10/s are exact)."""
    return Decimal(value).quantize(MICRO, rounding=ROUND_HALF_UP)


class Protocol(models.TextChoices):
    OPENAI_VIDEOS = "openai_videos", "OpenAI Videos API (/v1/videos)"
    TASK_API = "task_api", "Task API (aggregator, /sora/generate)"


class Tier(models.TextChoices):
    OFFICIAL = "official", "Official (per second, SLA)"
    AGGREGATOR = "aggregator", "Aggregator (per request)"


# What each protocol offers unless an admin says otherwise: model -> allowed seconds and sizes.
DEFAULT_OFFERS = {
    Protocol.OPENAI_VIDEOS: {
        "sora-2": {"seconds": ["4", "8", "12"], "sizes": ["720x1280", "1280x720"]},
        "sora-2-pro": {
            "seconds": ["4", "8", "12"],
            "sizes": ["720x1280", "1280x720", "1024x1792", "1792x1024"],
        },
    },
    Protocol.TASK_API: {
        "sora-2": {"seconds": ["10", "15"], "sizes": ["720x1280", "1280x720"]},
    },
}

OFFERS_EXAMPLE = '{"sora-2": {"seconds": ["4", "8"], "sizes": ["720x1280", "1280x720"]}}'
# Seconds and sizes as Generation stores them: at most 4 and 20 characters.
_SECONDS = re.compile(r"[1-9][0-9]{0,3}")
_SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")


def offer_problems(offers) -> list[str]:
    """What is wrong with an `offers` value, in words an admin can act on; [] when it is well formed.

    The shape DEFAULT_OFFERS has: model → {"seconds": ["4", ...], "sizes": ["720x1280", ...]}, every
    list non-empty, seconds as strings of whole positive seconds (the form and the router compare strings).
    """
    if not isinstance(offers, dict):
        return [f"Offers must be an object of models, e.g. {OFFERS_EXAMPLE}."]
    problems = []
    for model, offer in offers.items():
        name = f"{model[:40]!r}"
        if not model.strip() or len(model) > 80:
            problems.append(f"Model {name}: a model name is 1 to 80 characters.")
        if not isinstance(offer, dict) or set(offer) != {"seconds", "sizes"}:
            problems.append(f'Model {name}: give exactly "seconds" and "sizes", e.g. '
                            '{"seconds": ["4", "8"], "sizes": ["720x1280"]}.')
            continue
        seconds, sizes = offer["seconds"], offer["sizes"]
        if not (isinstance(seconds, list) and seconds
                and all(isinstance(s, str) and _SECONDS.fullmatch(s) for s in seconds)):
            problems.append(f'Model {name}: "seconds" is a list of whole seconds written as strings, e.g. ["4", "8"].')
        if not (isinstance(sizes, list) and sizes and all(isinstance(s, str) and _SIZE.fullmatch(s) for s in sizes)):
            problems.append(f'Model {name}: "sizes" is a list of WIDTHxHEIGHT strings, e.g. ["720x1280"].')
    return problems


DEFAULT_CAPABILITIES = {
    Protocol.OPENAI_VIDEOS: {"characters": True, "extract": False, "remix": True},
    Protocol.TASK_API: {"characters": True, "extract": True, "remix": False},
}


class BackendQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def for_characters(self):
        """Enabled backends that can hold characters."""
        return self.enabled().filter(supports_characters=True)


class Backend(models.Model):
    """A provider endpoint: protocol + base URL + key + offer + price table. Configured, never hard-coded."""

    name = models.CharField(max_length=80, unique=True)
    protocol = models.CharField(max_length=20, choices=Protocol.choices)
    base_url = models.URLField(max_length=300, help_text="e.g. https://api.openai.com/v1")
    api_key = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again after saving.")
    enabled = models.BooleanField(default=True)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.OFFICIAL)
    offers = models.JSONField(
        default=dict,
        blank=True,
        help_text='Models offered: {"sora-2": {"seconds": ["4", "8"], "sizes": ["720x1280"]}}',
    )
    supports_characters = models.BooleanField(default=True)
    supports_extract = models.BooleanField(default=False, help_text="Can make a character from one of its own tasks.")
    supports_remix = models.BooleanField(default=False)
    honours_idempotency_keys = models.BooleanField(
        default=False,
        help_text="The provider deduplicates creates by Idempotency-Key, so a create whose answer was lost "
        "may be sent again. Leave off unless the provider documents it.",
    )
    bills_failed_jobs = models.BooleanField(
        default=False, help_text="The provider keeps the money for failed or timed-out jobs (no refund)."
    )
    max_in_flight = models.PositiveIntegerField(default=4, help_text="Jobs submitted and not yet finished, at most.")
    paused_until = models.DateTimeField(null=True, blank=True, help_text="Set when the provider says 429.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BackendQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        # Empty means the protocol's usual offer (save() spells it out); anything else must be well formed.
        if self.offers and (problems := offer_problems(self.offers)):
            raise ValidationError({"offers": problems})

    def save(self, *args, **kwargs):
        if not self.offers and self.protocol in DEFAULT_OFFERS:
            # Spell the protocol's usual offer out, so an admin sees (and edits) what is offered.
            self.offers = copy.deepcopy(DEFAULT_OFFERS[self.protocol])
        super().save(*args, **kwargs)

    @property
    def key(self) -> str:
        """The plaintext API key; raises DecryptionError loudly rather than return ciphertext."""
        return reveal(self.api_key)

    @property
    def masked_key(self) -> str:
        return "••••••••" if self.api_key else "(none)"

    def offer(self) -> dict:
        """Model → allowed seconds and sizes. Offers stored malformed (saved before validation, or
        around it) offer nothing, so one bad backend cannot break the form, series or estimates."""
        offers = self.offers or DEFAULT_OFFERS.get(self.protocol, {})
        if problems := offer_problems(offers):
            if not getattr(self, "_offer_problem_logged", False):
                log.warning("Backend %s (#%s) offers nothing until an admin fixes its offers: %s",
                            self.name, self.pk, " ".join(problems))
                self._offer_problem_logged = True
            return {}
        return offers

    @property
    def offer_problem(self) -> str:
        """Why this backend offers nothing, for staff; "" when its offers are well formed."""
        return " ".join(offer_problems(self.offers or DEFAULT_OFFERS.get(self.protocol, {})))

    def allows(self, model: str, seconds: str, size: str) -> str | None:
        """None if this backend can make it, else the reason it cannot."""
        if not self.offer():
            return f"{self.name} offers nothing until an admin fixes its offers."
        offer = self.offer().get(model)
        if offer is None:
            return f"{self.name} does not offer model {model!r} (it offers {', '.join(self.offer())})."
        if str(seconds) not in offer.get("seconds", []):
            return f"{self.name} makes {model} in {', '.join(offer['seconds'])} seconds, not {seconds}."
        if size not in offer.get("sizes", []):
            return f"{self.name} makes {model} at {', '.join(offer['sizes'])}, not {size}."
        return None

    def client(self):
        from generations.backends import client_for

        return client_for(self)

    def in_flight_count(self) -> int:
        return self.generations.in_flight().count()

    def pause(self, seconds: float) -> None:
        until = timezone.now() + timedelta(seconds=max(seconds, 1))
        Backend.objects.filter(pk=self.pk).filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until)).update(
            paused_until=until
        )

    def is_paused(self) -> bool:
        return self.paused_until is not None and self.paused_until > timezone.now()

    def price_for(self, unit: str, model: str = "", size: str = "", at=None) -> Price | None:
        return Price.objects.current(self, unit, model=model, size=size, at=at)

    def install_default_prices(self) -> None:
        from generations.pricing import default_prices

        for row in default_prices(self.protocol):
            Price.objects.get_or_create(backend=self, **row)


class PriceUnit(models.TextChoices):
    PER_SECOND = "per_second", "per second of video"
    PER_REQUEST = "per_request", "per request"
    PER_CHARACTER = "per_character", "per character created"


class PriceQuerySet(models.QuerySet):
    def current(self, backend, unit, *, model="", size="", at=None) -> Price | None:
        """The most specific row in force at `at`: model+size beats model beats any-model."""
        at = at or timezone.now()
        rows = self.filter(backend=backend, unit=unit, effective_from__lte=at).filter(
            Q(model="") | Q(model=model), Q(size="") | Q(size=size)
        )
        # Specific rows first (non-empty sorts after empty, so descending), then the newest.
        return rows.order_by("-model", "-size", "-effective_from", "-pk").first()


class Price(models.Model):
    """One versioned price row. Never edited in place once used: add a row with a later effective date."""

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="prices")
    model = models.CharField(max_length=80, blank=True, help_text="Blank = any model.")
    size = models.CharField(max_length=20, blank=True, help_text="Blank = any size.")
    unit = models.CharField(max_length=20, choices=PriceUnit.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=6, help_text="USD")
    effective_from = models.DateTimeField(default=timezone.now)

    objects = PriceQuerySet.as_manager()

    class Meta:
        ordering = ["backend", "unit", "model", "size", "-effective_from"]
        indexes = [models.Index(fields=["backend", "unit", "effective_from"])]

    def clean(self):
        super().clean()
        if self.amount is not None and self.amount < 0:
            raise ValidationError({"amount": "A price cannot be negative."})

    def __str__(self) -> str:
        scope = " ".join(filter(None, [self.model or "any model", self.size]))
        return f"{self.backend} {scope}: ${self.amount} {self.get_unit_display()}"


class SeriesQuerySet(models.QuerySet):
    def for_user(self, user):
        return self if user.is_staff else self.filter(owner=user)


class Series(models.Model):
    """A storyboard: ordered scenes around the same characters, with shared defaults."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="series")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    characters = models.ManyToManyField("characters.Character", blank=True, related_name="series")
    backend = models.ForeignKey(Backend, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model = models.CharField(max_length=80, default="sora-2")
    seconds = models.CharField(max_length=4, default="4")
    size = models.CharField(max_length=20, default="720x1280")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SeriesQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return self.title


class SceneQuerySet(models.QuerySet):
    def for_user(self, user):
        return self if user.is_staff else self.filter(series__owner=user)


class Scene(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="scenes")
    position = models.PositiveIntegerField(default=0)
    prompt = models.TextField(max_length=32000)
    chosen_take = models.ForeignKey(
        "Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SceneQuerySet.as_manager()

    class Meta:
        ordering = ["series", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.series} #{self.position}"



class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    SUBMITTED = "submitted", "Submitted"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"


IN_FLIGHT = [Status.SUBMITTED, Status.IN_PROGRESS]
ACTIVE = [Status.QUEUED, Status.SUBMITTING, Status.SUBMITTED, Status.IN_PROGRESS]
TERMINAL = [Status.COMPLETED, Status.FAILED, Status.TIMED_OUT, Status.CANCELLED]


class GenerationQuerySet(models.QuerySet):
    def for_user(self, user):
        """What `user` may see: their own jobs (staff: everyone's), without deleted ones."""
        visible = self.filter(deleted_at__isnull=True)
        return visible if user.is_staff else visible.filter(owner=user)

    def active(self):
        return self.filter(status__in=ACTIVE)

    def in_flight(self):
        """Holding one of the backend's concurrency slots: being submitted or running there."""
        return self.filter(status__in=[Status.SUBMITTING, *IN_FLIGHT])

    def due(self, now=None):
        return self.active().filter(next_poll_at__lte=now or timezone.now())


def _asset_path(instance, filename, kind):
    return f"generations/{instance.owner_id}/{instance.uuid}/{kind}{filename[filename.rfind('.'):]}"


def upload_video(instance, filename):
    return _asset_path(instance, filename, "video")


def upload_thumbnail(instance, filename):
    return _asset_path(instance, filename, "thumbnail")


class Generation(models.Model):
    """One video job, from the form to the stored MP4. Every state change is compare-and-set."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations")
    scene = models.ForeignKey(Scene, null=True, blank=True, on_delete=models.SET_NULL, related_name="takes")
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="generations")
    characters = models.ManyToManyField("characters.Character", blank=True, related_name="generations")
    remix_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="remixes")

    prompt = models.TextField(max_length=32000, help_text="As the creator wrote it, with @handles.")
    prompt_sent = models.TextField(blank=True, help_text="As sent to the backend.")
    characters_sent = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=80)
    seconds = models.CharField(max_length=4)
    size = models.CharField(max_length=20)
    routing_reason = models.CharField(max_length=300, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    remote_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True, default="")
    # The form's one-time token: a double-click or a re-sent form finds this job instead of a twin.
    client_token = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Submit attempts.")
    poll_errors = models.PositiveIntegerField(default=0, help_text="Consecutive failed polls.")
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    remote_video_url = models.URLField(max_length=2000, blank=True)
    error_code = models.CharField(max_length=80, blank=True)
    error_message = models.TextField(blank=True)

    video = models.FileField(upload_to=upload_video, blank=True)
    thumbnail = models.FileField(upload_to=upload_thumbnail, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Deleting hides the job and removes its files; the row stays so the ledger keeps its meaning.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["status", "next_poll_at"])]
        constraints = [
            models.UniqueConstraint(fields=["owner", "client_token"], condition=~Q(client_token=""),
                                    name="one_generation_per_client_token"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt[:40]}"

    def save(self, *args, **kwargs):
        if not self.idempotency_key:
            self.idempotency_key = f"sora-studio-{self.uuid.hex}"
        super().save(*args, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def deadline(self):
        return self.created_at + timedelta(seconds=settings.GENERATION_TIMEOUT)

    def transition(self, old: str | list[str], new: str, **fields) -> bool:
        """Compare-and-set: move to `new` only if still in `old`. True if this call won."""
        olds = [old] if isinstance(old, str) else list(old)
        fields.setdefault("updated_at", timezone.now())
        won = Generation.objects.filter(pk=self.pk, status__in=olds).update(status=new, **fields) == 1
        if won:
            GenerationEvent.objects.create(generation_id=self.pk, status=new, note=fields.get("error_message", "")[:300])
            self.status = new
            for name, value in fields.items():
                setattr(self, name, value)
        return won

    def fail(self, code: str, message: str, *, status: str = Status.FAILED) -> bool:
        """End the job with a reason and refund what was charged up front. Safe to call twice."""
        with transaction.atomic():
            won = self.transition(
                ACTIVE, status, error_code=code[:80], error_message=message, next_poll_at=None, lease_until=None
            )
            if won:
                CostEntry.objects.refund_if_unbilled(self)
        return won

    def charged(self) -> Decimal:
        return self.cost_entries.net()


class GenerationEvent(models.Model):
    """The timeline of a job: one row per state it entered (written by the winning transition)."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=20, choices=Status.choices)
    at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["generation", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.generation_id} {self.status} at {self.at:%H:%M:%S}"


class CostKind(models.TextChoices):
    ESTIMATE = "estimate", "Estimate"
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"


class CostEntryQuerySet(models.QuerySet):
    def net(self) -> Decimal:
        """Charges minus refunds (estimates are not money spent)."""
        totals = dict(
            self.filter(kind__in=[CostKind.CHARGE, CostKind.REFUND])
            .values_list("kind")
            .annotate(total=Sum("amount"))
            .values_list("kind", "total")
        )
        return money(totals.get(CostKind.CHARGE, 0) - totals.get(CostKind.REFUND, 0))

    def for_user(self, user):
        return self if user.is_staff else self.filter(owner=user)

    def in_month(self, year: int, month: int):
        start = timezone.datetime(year, month, 1).date()
        end = timezone.datetime(year + (month == 12), month % 12 + 1, 1).date()
        return self.filter(day__gte=start, day__lt=end)

    def record(self, *, kind, amount, backend, owner, generation=None, binding=None, price=None, note=""):
        """Append one entry; a second charge or refund for the same job is refused by the database."""
        now = timezone.now()
        return self.create(
            kind=kind,
            amount=money(amount),
            backend=backend,
            owner=owner,
            generation=generation,
            binding=binding,
            price=price,
            note=note,
            created_at=now,
            day=timezone.localdate(now),
            model=generation.model if generation else "",
            series_id=generation.scene.series_id if generation and generation.scene_id else None,
        )

    def record_once(self, **fields):
        """Record an entry unless the ledger already has one of this kind for the same job or
        binding (the unique constraints decide, so two workers racing both end up right).
        Returns the new entry, or None if there was one already."""
        try:
            with transaction.atomic():
                return self.record(**fields)
        except IntegrityError:
            return None

    def refund_if_unbilled(self, generation) -> None:
        """Refund a failed job's up-front charge where the backend does not bill failures."""
        if generation.backend.bills_failed_jobs:
            return
        charge = self.filter(generation=generation, kind=CostKind.CHARGE).first()
        if charge is None:
            return
        self.record_once(
            kind=CostKind.REFUND,
            amount=charge.amount,
            backend=charge.backend,
            owner=charge.owner,
            generation=generation,
            price=charge.price,
            note=f"Refund: {generation.get_status_display().lower()} ({generation.error_code})",
        )


class CostEntry(models.Model):
    """Append-only ledger. Corrections are new rows (refunds), never edits."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cost_entries")
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="cost_entries")
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_entries"
    )
    binding = models.ForeignKey(
        "characters.CharacterBinding", null=True, blank=True, on_delete=models.SET_NULL, related_name="cost_entries"
    )
    kind = models.CharField(max_length=10, choices=CostKind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=6, help_text="USD")
    price = models.ForeignKey(Price, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The billing day, stored: grouping by a stored, indexed day is ~60x faster than TruncDay on SQLite.
    day = models.DateField(db_index=True)
    # What the report groups by, stored as well, so a month's report never joins the generations.
    model = models.CharField(max_length=80, blank=True)
    series = models.ForeignKey(Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = CostEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "cost entries"
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=Q(generation__isnull=False),
                name="one_entry_of_each_kind_per_generation",
            ),
            models.UniqueConstraint(
                fields=["binding", "kind"],
                condition=Q(binding__isnull=False),
                name="one_entry_of_each_kind_per_binding",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="cost_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["owner", "day"]), models.Index(fields=["backend", "day"])]

    def __str__(self) -> str:
        return f"{self.kind} ${self.amount} {self.backend}"


class PumpLease(models.Model):
    """Who runs the pump now: one row per pump name, taken by compare-and-set, renewed each tick."""

    name = models.CharField(max_length=40, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(default=timezone.now)


class BudgetQuerySet(models.QuerySet):
    def applicable(self, owner, backend):
        """Caps a job by `owner` on `backend` counts against: overall, the backend's, the creator's."""
        return self.filter(
            Q(user__isnull=True) | Q(user=owner), Q(backend__isnull=True) | Q(backend=backend)
        )


class Budget(models.Model):
    """A monthly cap. No user and no backend = the whole studio; either or both narrow it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="budgets", help_text="Blank = every creator.")
    backend = models.ForeignKey(Backend, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets",
                                help_text="Blank = every backend.")
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="USD per calendar month")
    hard = models.BooleanField(default=True, help_text="Hard caps refuse a job before anything is sent; soft caps warn.")

    objects = BudgetQuerySet.as_manager()

    class Meta:
        ordering = ["user", "backend", "-hard"]

    def clean(self):
        super().clean()
        if self.amount is not None and self.amount < 0:
            raise ValidationError({"amount": "A budget cannot be negative."})

    def __str__(self) -> str:
        return f"{'Hard' if self.hard else 'Soft'} cap {self.scope}: ${self.amount}/month"

    @property
    def scope(self) -> str:
        if self.user_id and self.backend_id:
            return f"for {self.user} on {self.backend}"
        if self.user_id:
            return f"for {self.user}"
        if self.backend_id:
            return f"on {self.backend}"
        return "for the whole studio"
