"""Rendered files of a job, made on first download and kept in default_storage."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from . import render
from .models import Job


@dataclass(frozen=True)
class Variant:
    filename: str
    content_type: str


VARIANTS = {
    "video": Variant("video.mp4", "video/mp4"),
    "thumbnail": Variant("thumbnail.webp", "image/webp"),
    "spritesheet": Variant("spritesheet.jpg", "image/jpeg"),
}

_RENDERERS = {
    "video": render.render_mp4,
    "thumbnail": render.render_thumbnail,
    "spritesheet": render.render_spritesheet,
}


def path_for(job: Job, variant: str) -> str:
    return f"{job.asset_dir()}/{VARIANTS[variant].filename}"


def ensure(job: Job, variant: str) -> str:
    """Storage name of the asset, rendering it first if needed. Safe to call concurrently."""
    name = path_for(job, variant)
    if default_storage.exists(name):
        return name
    look = render.look_for(job.prompt, job.size, f"{job.model} · {job.seconds}s · {job.id[-8:]}")
    data = _RENDERERS[variant](look, job.seconds)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        # Two downloads rendered at once and storage picked a fresh name for the loser;
        # the content is identical, so drop the duplicate and serve the first.
        default_storage.delete(saved)
    return name


def delete_all(job: Job) -> None:
    for variant in VARIANTS:
        name = path_for(job, variant)
        if default_storage.exists(name):
            default_storage.delete(name)
