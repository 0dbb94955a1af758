"""Backends (a protocol + base URL + key + offer) and their versioned price rows."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generations.providers import registry
from generations.providers.base import REFERENCE_IMAGES, ProtocolSpec
from generations.providers.offers import image_roles_in, offer_problems
from sora_studio.fields import EncryptedTextField, reveal

log = logging.getLogger(__name__)


class Tier(models.TextChoices):
    OFFICIAL = "official", "Official (per second, SLA)"
    AGGREGATOR = "aggregator", "Aggregator (per request)"


@dataclass(frozen=True)
class Refusal:
    """Why a backend cannot make a video, in words a creator can act on."""

    backend: Backend
    reason: str

    def __str__(self) -> str:
        return self.reason


class BackendQuerySet(models.QuerySet):
    def enabled(self):
        return self.filter(enabled=True)

    def with_prices(self):
        """Each backend with its price rows read in one more query, for `price_for`. Not in the rows' listing order:
        `price_for` picks by its own rule, and that order (by the backend's name first) costs a join and a sort."""
        return self.prefetch_related(models.Prefetch("prices", queryset=Price.objects.order_by()))

    def for_characters(self):
        """Enabled backends that can hold characters."""
        return self.enabled().filter(supports_characters=True)

    def unhealthy(self):
        """Backends staff should hear about: disabled for a refused key, or with their circuit open."""
        return self.filter((Q(enabled=False) & ~Q(disabled_reason="")) | Q(circuit_open_until__isnull=False))


class Backend(models.Model):
    """A provider endpoint: protocol + base URL + key + offer + price table. Configured, never hard-coded."""

    name = models.CharField(max_length=80, unique=True)
    protocol = models.CharField(max_length=20, choices=registry.choices)
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
    timeout_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A job not finished after this many seconds ends timed out (and is refunded where billed). "
        "Blank = the studio's GENERATION_TIMEOUT.",
    )
    paused_until = models.DateTimeField(null=True, blank=True, help_text="Set when the provider says 429.")
    # Health (see providers/health.py), kept here so web and worker processes share one view of it.
    disabled_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why the studio disabled this backend (e.g. the provider refused its key).",
    )
    consecutive_failures = models.PositiveIntegerField(default=0, help_text="Transient failures in a row.")
    last_failure = models.CharField(max_length=300, blank=True, help_text="The latest transient failure.")
    circuit_open_until = models.DateTimeField(
        null=True, blank=True, help_text="Set when the circuit opened: no new jobs until then, then one trial job."
    )
    probe_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the one trial job after a cooldown was let through."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BackendQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.enabled:
            self.disabled_reason = ""  # an admin enabled it again (after fixing the key): the reason is history
        if not self.offers and self.protocol in registry.PROTOCOLS:
            # Spell the protocol's usual offer out, so an admin sees (and edits) what is offered.
            self.offers = copy.deepcopy(self.spec.default_offers)
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        # Empty means the protocol's usual offer (save() spells it out); anything else must be well formed.
        if self.offers and (problems := offer_problems(self.offers)):
            raise ValidationError({"offers": problems})
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValidationError({"timeout_seconds": "A timeout must be at least one second (blank: the default)."})

    @property
    def timeout(self) -> int:
        """Seconds a job may take on this backend before it ends timed out."""
        return self.timeout_seconds or settings.GENERATION_TIMEOUT

    @property
    def spec(self) -> ProtocolSpec:
        """What this backend's protocol is and can do."""
        return registry.spec(self.protocol)

    @property
    def takes_reference_images(self) -> bool:
        """Characters reach it as their stills (no registration), rather than by an id it keeps."""
        return self.spec.travel == REFERENCE_IMAGES

    @property
    def deletes_remotely(self) -> bool:
        return self.spec.deletes_remotely

    def adopt_protocol_defaults(self) -> None:
        """Start from what the protocol is and can do; an admin may narrow it afterwards."""
        spec = self.spec
        self.tier = spec.default_tier
        self.supports_characters, self.supports_extract, self.supports_remix = spec.characters, spec.extract, spec.remix
        self.honours_idempotency_keys = spec.idempotency_keys

    def _default_offers(self) -> dict:
        return self.spec.default_offers if self.protocol in registry.PROTOCOLS else {}

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
        offers = self.offers or self._default_offers()
        if problems := offer_problems(offers):
            if not getattr(self, "_offer_problem_logged", False):
                log.warning(
                    "Backend %s (#%s) offers nothing until an admin fixes its offers: %s",
                    self.name,
                    self.pk,
                    " ".join(problems),
                )
                self._offer_problem_logged = True
            return {}
        return offers

    @property
    def offer_problem(self) -> str:
        """Why this backend offers nothing, for staff; "" when its offers are well formed."""
        return " ".join(offer_problems(self.offers or self._default_offers()))

    def refusal(self, model: str, seconds: str, size: str) -> Refusal | None:
        """Why this backend cannot make such a video, or None if it can."""
        offers = self.offer()
        if not offers:
            return Refusal(self, f"{self.name} offers nothing until an admin fixes its offers.")
        offer = offers.get(model)
        if offer is None:
            return Refusal(self, f"{self.name} does not offer model {model!r} (it offers {', '.join(offers)}).")
        if str(seconds) not in offer.get("seconds", []):
            return Refusal(self, f"{self.name} makes {model} in {', '.join(offer['seconds'])} seconds, not {seconds}.")
        if size not in offer.get("sizes", []):
            return Refusal(self, f"{self.name} makes {model} at {', '.join(offer['sizes'])}, not {size}.")
        return None

    def image_roles(self, model: str) -> set[str]:
        """The images ("start", "end") this backend's `model` takes: the protocol's own, a model's offer
        where it says ("images"), or, for a model app, what its arguments name."""
        offer = self.offer().get(model) or {}
        if self.spec.image_arguments:
            return image_roles_in(offer)
        return set(offer["images"]) if "images" in offer else set(self.spec.images)

    def image_refusal(self, model: str, roles, *, with_characters: bool = False) -> Refusal | None:
        """Why this backend cannot take the images asked for (`roles`: "start", "end"), or None if it can. An
        image-to-video model ("needs_start_image" in its offer) needs a start image, or a mentioned character
        whose still can be its first frame (`with_characters`)."""
        if "start" not in roles and not with_characters and (self.offer().get(model) or {}).get("needs_start_image"):
            return Refusal(
                self,
                f"{self.name} cannot make {model} from a prompt alone: it needs a start image (give one, or "
                "mention a character whose still can open the video).",
            )
        missing = [role for role in roles if role not in self.image_roles(model)]
        if not missing:
            return None
        what = " and ".join(f"an {role} image" if role == "end" else f"a {role} image" for role in missing)
        takes = self.image_roles(model)
        if not takes:
            why = f"{model} is sent the prompt only"
        elif self.spec.image_arguments:
            names = " or ".join("{start_image}" if role == "start" else "{end_image}" for role in missing)
            why = f"{model} takes {_listed(takes)}: its offer's arguments name no {names}"
        else:
            why = f"{model} takes {_listed(takes)}"
        return Refusal(self, f"{self.name} cannot take {what} ({why}).")

    def client(self):
        return registry.client_for(self)

    def pause(self, seconds: float) -> None:
        until = timezone.now() + timedelta(seconds=max(seconds, 1))
        Backend.objects.filter(pk=self.pk).filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until)).update(
            paused_until=until
        )

    @property
    def health_summary(self) -> str:
        """What is wrong with this backend's health, for staff; "" when nothing is."""
        if not self.enabled and self.disabled_reason:
            return f"Disabled: {self.disabled_reason}"
        if self.circuit_open_until is not None:
            at = timezone.localtime(self.circuit_open_until).strftime("%H:%M")
            return (
                f"Circuit open after {self.consecutive_failures} failures in a row, until {at} "
                f"(then one trial job). Last: {self.last_failure or 'unknown'}"
            )
        return ""

    def is_paused(self) -> bool:
        return self.paused_until is not None and self.paused_until > timezone.now()

    def price_for(self, unit: str, model: str = "", size: str = "", at=None) -> Price | None:
        """The most specific row in force at `at`: model+size beats model beats any-model; then the newest.

        Reads `prices` as prefetched (`Backend.objects.with_prices()`), so pricing every enabled backend
        costs one query, not one per backend and unit; without a prefetch, one query for this backend."""
        at = at or timezone.now()
        rows = [
            p
            for p in self.prices.all()
            if p.unit == unit and p.effective_from <= at and p.model in ("", model) and p.size in ("", size)
        ]
        return max(rows, key=lambda p: (p.model != "", p.size != "", p.effective_from, p.pk), default=None)

    def install_default_prices(self, *, videos: bool = True) -> None:
        """The protocol's price rows; `videos=False` leaves out the per-second and per-request ones."""
        for row in self.spec.default_price_rows():
            if videos or row["unit"] == PriceUnit.PER_CHARACTER:
                Price.objects.get_or_create(backend=self, **row)


def _listed(roles) -> str:
    """{"start"} -> "a start image only"; set() -> "no image"."""
    if not roles:
        return "no image"
    if roles == {"start"}:
        return "a start image only"
    return "start and end images"


class PriceUnit(models.TextChoices):
    PER_SECOND = "per_second", "per second of video"
    PER_REQUEST = "per_request", "per request"
    PER_CHARACTER = "per_character", "per character created"


class Price(models.Model):
    """One versioned price row. Never edited in place once used: add a row with a later effective date."""

    backend = models.ForeignKey(Backend, on_delete=models.CASCADE, related_name="prices")
    model = models.CharField(max_length=80, blank=True, help_text="Blank = any model.")
    size = models.CharField(max_length=20, blank=True, help_text="Blank = any size.")
    unit = models.CharField(max_length=20, choices=PriceUnit.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=6, help_text="USD")
    effective_from = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["backend", "unit", "model", "size", "-effective_from"]
        indexes = [models.Index(fields=["backend", "unit", "effective_from"])]

    def __str__(self) -> str:
        scope = " ".join(filter(None, [self.model or "any model", self.size]))
        return f"{self.backend} {scope}: ${self.amount} {self.get_unit_display()}"

    def clean(self):
        super().clean()
        if self.amount is not None and self.amount < 0:
            raise ValidationError({"amount": "A price cannot be negative."})
