"""Personal API tokens, and what was made through the API: a link row per video and per character."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ApiTokenQuerySet(models.QuerySet):
    def owned_by(self, user):
        return self.filter(user=user)

    def live(self):
        """Not revoked: these authenticate."""
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A creator's personal token for the `/v1/` API. Only its SHA-256 is kept: the secret is shown once.

    The rate-limit window lives on the row (compare-and-set updates), so every web process, however
    many, counts against the same limit without a shared cache.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80, help_text="What uses it, e.g. “nightly batch”.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=24, editable=False, help_text="Enough of the token to recognise it.")
    monthly_cap = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="USD per calendar month this token's videos may commit; blank = no cap of its own.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The current rate-limit window: when it started and how many requests it has counted.
    window_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    window_count = models.PositiveIntegerField(default=0, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.hint})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> bool:
        """Stop the token working, now and for good. True if this call revoked it."""
        now = timezone.now()
        won = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now) == 1
        if won:
            self.revoked_at = now
        return won


class ApiVideo(models.Model):
    """A generation made through the API: which token made it, and the create's Idempotency-Key and body
    hash (a retried create finds its video; the same key with another body is refused)."""

    generation = models.OneToOneField("generations.Generation", on_delete=models.CASCADE, related_name="api_link")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="videos")
    idempotency_key = models.CharField(max_length=255, blank=True)
    body_hash = models.CharField(max_length=64, blank=True)
    # The video a remix was asked of, whether the provider remixed it or a new job was started from it.
    remixed_from = models.ForeignKey(
        "generations.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "video made through the API"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_api_video_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.generation_id} via {self.token_id}"


class ApiCharacter(models.Model):
    """A character made through the API, with the public id the API knows it by (`char_<hex>`)."""

    character = models.OneToOneField("characters.Character", on_delete=models.CASCADE, related_name="api_link")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="characters")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "character made through the API"

    def __str__(self) -> str:
        return f"char_{self.public_id.hex}"
