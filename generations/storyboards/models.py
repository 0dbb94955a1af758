"""Storyboards: a series of ordered scenes around the same characters, with shared defaults; and exports."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from generations.jobs.models import CharacterFallback, ImageRole, ImageSource, Policy
from generations.providers.models import Backend


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
    # Its scenes' routing policy when no backend is pinned; blank: the creator's default.
    routing_policy = models.CharField(
        "Routing", max_length=20, choices=Policy.choices, blank=True, help_text="Blank: your default."
    )
    # A scene with characters whose backend is down, when no other backend can carry them.
    character_fallback = models.CharField(
        "When the characters' backends are down",
        max_length=10,
        choices=CharacterFallback.choices,
        default=CharacterFallback.WAIT,
    )
    model = models.CharField(max_length=80, default="sora-2")
    seconds = models.PositiveIntegerField(default=4)
    size = models.CharField(max_length=20, default="720x1280")
    # Generating runs the scenes as a chain: each take starts from the last frame of the previous scene's take.
    continuous = models.BooleanField(
        "Each scene starts where the previous one ended",
        default=False,
        help_text="Generating waits for each scene's take, then starts the next scene from its last frame.",
    )
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


class ChainState(models.TextChoices):
    """Where a scene of a continuous series stands in its chain (the chain lives in these rows, not in a queue)."""

    IDLE = "", "Not waiting"
    WAITING = "waiting", "Waiting for the previous scene"
    STOPPED = "stopped", "Stopped"


class Scene(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="scenes")
    position = models.PositiveIntegerField(default=0)
    prompt = models.TextField(max_length=32000)
    chosen_take = models.ForeignKey(
        "generations.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chain_state = models.CharField(max_length=10, choices=ChainState.choices, blank=True, default=ChainState.IDLE)
    chain_note = models.CharField(max_length=400, blank=True, help_text="Why the chain stopped here.")
    # Bumped each time the scene is put (back) in the chain: its chained take's client token is made of it, so
    # one link never gets two takes, whoever advances the chain and however often.
    chain_link = models.PositiveIntegerField(default=0)
    # The previous scene's take whose last frame the scene's chained take started from.
    chained_from = models.ForeignKey(
        "generations.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SceneQuerySet.as_manager()

    class Meta:
        ordering = ["series", "position", "pk"]
        indexes = [models.Index(fields=["chain_state"], name="scene_chain_state")]

    def __str__(self) -> str:
        return f"{self.series} #{self.position}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


UNFINISHED_EXPORTS = (ExportStatus.QUEUED, ExportStatus.BUILDING)


class ExportQuerySet(models.QuerySet):
    def for_user(self, user) -> Self:
        """An export is its creator's download (staff exporting someone's series get their own)."""
        return self.filter(created_by=user)

    def unfinished(self) -> Self:
        return self.filter(status__in=UNFINISHED_EXPORTS)


def _export_path(instance, filename):
    return f"exports/{instance.created_by_id}/{instance.pk}/{filename}"


class Export(models.Model):
    """A zip of a series (or of everything a creator made), built by a worker, then downloaded.

    Its state lives here, not in the queue: a worker holds a lease while it builds and renews it as it
    copies files; a build whose worker died (or whose task the broker dropped) is handed out again when
    its lease runs out. Every change is compare-and-set on (status, holder)."""

    EVERYTHING = "all"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exports")
    series = models.ForeignKey(Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="exports")
    # "all" or "series:<pk>": at most one unfinished export per creator and scope (a constraint), so a
    # double click finds the export already under way.
    scope = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    filename = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    files_done = models.PositiveIntegerField(default=0)
    files_total = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=_export_path, max_length=300, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    missing_files = models.PositiveIntegerField(default=0, help_text="Files missing from storage, named in the zip.")
    error = models.TextField(blank=True)
    holder = models.CharField(max_length=32, blank=True, help_text="The build that holds the lease.")
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Builds started.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ExportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["created_by", "-created_at"], name="export_by_creator")]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "scope"],
                condition=Q(status__in=UNFINISHED_EXPORTS),
                name="one_unfinished_export_per_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status not in UNFINISHED_EXPORTS

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.READY:
            return 100
        return self.files_done * 100 // self.files_total if self.files_total else 0

    def _mine(self, holder: str):
        return Export.objects.filter(pk=self.pk, status=ExportStatus.BUILDING, holder=holder)

    def claim(self, holder: str, lease_seconds: float) -> bool:
        """Start building: a queued export, or one whose builder stopped renewing its lease."""
        now = timezone.now()
        claimed = (
            Export.objects.filter(pk=self.pk)
            .filter(Q(status=ExportStatus.QUEUED) | Q(status=ExportStatus.BUILDING, lease_until__lt=now))
            .update(
                status=ExportStatus.BUILDING,
                holder=holder,
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=F("attempts") + 1,
                files_done=0,
                started_at=now,
            )
        )
        if claimed:
            self.refresh_from_db()
        return claimed == 1

    def report(self, holder: str, done: int, total: int, lease_seconds: float) -> bool:
        """Progress, and the lease renewed. False if this build no longer holds the export."""
        lease_until = timezone.now() + timedelta(seconds=lease_seconds)
        return self._mine(holder).update(files_done=done, files_total=total, lease_until=lease_until) == 1

    def finish(self, holder: str, name: str, size: int, missing: int) -> bool:
        return (
            self._mine(holder).update(
                status=ExportStatus.READY,
                file=name,
                size=size,
                missing_files=missing,
                files_done=F("files_total"),
                holder="",
                lease_until=None,
                finished_at=timezone.now(),
            )
            == 1
        )

    def fail(self, holder: str, message: str) -> bool:
        return (
            self._mine(holder).update(
                status=ExportStatus.FAILED, error=message, holder="", lease_until=None, finished_at=timezone.now()
            )
            == 1
        )

    def requeue_if_stalled(self, patience_seconds: float) -> bool:
        """Queued or building, and nobody has touched it within its lease: the worker died, or the broker
        dropped the task (Redis delivers at most once). Back to queued, for one more task. True if this
        call did it (two pages polling at once requeue it once)."""
        now = timezone.now()
        return (
            Export.objects.filter(pk=self.pk, status__in=UNFINISHED_EXPORTS, lease_until__lt=now).update(
                status=ExportStatus.QUEUED, holder="", lease_until=now + timedelta(seconds=patience_seconds)
            )
            == 1
        )


def upload_scene_image(instance, filename):
    scene = instance.scene
    extension = filename[filename.rfind(".") :] if "." in filename else ".jpg"
    return f"series/{scene.series.owner_id}/{scene.series_id}/scene-{scene.pk}-{instance.role}{extension}"


class SceneImage(models.Model):
    """A scene's start or end image, as the creator chose it in the scene editor (checked, not yet cropped:
    each take is cropped to the series' size when it is started), kept as it was given."""

    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="images")
    role = models.CharField(max_length=10, choices=ImageRole.choices)
    image = models.FileField(upload_to=upload_scene_image)
    source = models.CharField(max_length=20, choices=ImageSource.choices)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scene", "-role"]  # start, then end
        constraints = [models.UniqueConstraint(fields=["scene", "role"], name="one_scene_image_per_role")]

    def __str__(self) -> str:
        return f"{self.scene} {self.role} image"
