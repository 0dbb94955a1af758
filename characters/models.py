"""The character library: a creator's characters and their per-backend bindings."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

HANDLE_PATTERN = r"[a-z0-9_]{2,30}"
handle_validator = RegexValidator(rf"^{HANDLE_PATTERN}$", "2–30 characters: lowercase letters, digits and underscores.")


class CharacterQuerySet(models.QuerySet):
    def for_user(self, user):
        return self if user.is_staff else self.filter(owner=user)

    def owned_by(self, user):
        return self.filter(owner=user)


def _clip_path(instance, filename):
    return f"characters/{instance.owner_id}/{instance.handle}/source{filename[filename.rfind('.') :]}"


def _avatar_path(instance, filename):
    return f"characters/{instance.owner_id}/{instance.handle}/avatar{filename[filename.rfind('.') :]}"


class Character(models.Model):
    """A recurring character. The stored source clip is what keeps it consistent across backends."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="characters")
    name = models.CharField(max_length=80)
    handle = models.CharField(max_length=30, validators=[handle_validator], help_text="Written as @handle in prompts.")
    description = models.TextField(blank=True, max_length=2000)
    source_url = models.URLField(max_length=2000, blank=True)
    source_clip = models.FileField(upload_to=_clip_path, blank=True)
    avatar = models.FileField(upload_to=_avatar_path, blank=True)
    source_generation = models.ForeignKey(
        "generations.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CharacterQuerySet.as_manager()

    class Meta:
        ordering = ["handle"]
        constraints = [models.UniqueConstraint(fields=["owner", "handle"], name="one_handle_per_owner")]

    def __str__(self) -> str:
        return f"@{self.handle}"

    def binding_on(self, backend) -> CharacterBinding | None:
        return next((b for b in self.bindings.all() if b.backend_id == backend.pk), None)


class BindingStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class CharacterBinding(models.Model):
    """The character as one backend knows it. A remote id is valid on that backend only."""

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="bindings")
    backend = models.ForeignKey("generations.Backend", on_delete=models.CASCADE, related_name="bindings")
    remote_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=BindingStatus.choices, default=BindingStatus.PROCESSING)
    error = models.TextField(blank=True)
    # Made from a finished task on the backend itself (task_api extract) rather than from the clip.
    extract_from_task = models.CharField(max_length=200, blank=True)
    # While processing: when a worker should (re)try, and how many tries so far. A worker holding it
    # pushes next_try_at ahead (its lease); a transient provider error brings it back sooner.
    attempts = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["character", "backend"]
        constraints = [models.UniqueConstraint(fields=["character", "backend"], name="one_binding_per_backend")]

    def __str__(self) -> str:
        return f"{self.character} on {self.backend}"

    def transition(self, old: str, new: str, **fields) -> bool:
        won = (
            CharacterBinding.objects.filter(pk=self.pk, status=old).update(
                status=new, updated_at=timezone.now(), **fields
            )
            == 1
        )
        if won:
            self.status = new
            for name, value in fields.items():
                setattr(self, name, value)
        return won


def _still_path(instance, filename):
    return f"characters/{instance.character.owner_id}/{instance.character.handle}/still-{instance.position}.jpg"


class StillSource(models.TextChoices):
    CLIP = "clip", "Taken from the clip"
    UPLOAD = "upload", "Uploaded"


class CharacterStill(models.Model):
    """One of up to three stills of a character: what carries it to backends that take reference images."""

    character = models.ForeignKey(Character, on_delete=models.CASCADE, related_name="stills")
    position = models.PositiveSmallIntegerField()
    image = models.FileField(upload_to=_still_path)
    source = models.CharField(max_length=10, choices=StillSource.choices, default=StillSource.CLIP)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["character", "position"]
        constraints = [models.UniqueConstraint(fields=["character", "position"], name="one_still_per_position")]

    def __str__(self) -> str:
        return f"{self.character} still {self.position}"
