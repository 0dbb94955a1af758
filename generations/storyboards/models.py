"""Storyboards: a series of ordered scenes around the same characters, with shared defaults."""

from __future__ import annotations

from django.conf import settings
from django.db import models

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
        "generations.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = SceneQuerySet.as_manager()

    class Meta:
        ordering = ["series", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.series} #{self.position}"


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
