"""Rendered files of a job, made on first download and kept in default_storage, and the first and last
frames its client gave (kept beside them when the job is created, used when the video is rendered)."""

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


FRAMES = {"start": "given-start-frame.img", "end": "given-end-frame.img"}


def path_for(job: Job, variant: str) -> str:
    return f"{job.asset_dir()}/{VARIANTS[variant].filename}"


def keep_frames(job: Job, *, start: bytes | None = None, end: bytes | None = None) -> None:
    """Keep the images a client gave as the job's first and last frame (checked images, as the view decoded them)."""
    for role, data in (("start", start), ("end", end)):
        if data:
            name = f"{job.asset_dir()}/{FRAMES[role]}"
            if default_storage.exists(name):
                default_storage.delete(name)
            default_storage.save(name, ContentFile(data))


def _given_frame(job: Job, role: str) -> bytes | None:
    name = f"{job.asset_dir()}/{FRAMES[role]}"
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def ensure(job: Job, variant: str) -> str:
    """Storage name of the asset, rendering it first if needed. Safe to call concurrently."""
    name = path_for(job, variant)
    if default_storage.exists(name):
        return name
    look = render.look_for(job.prompt, job.size, f"{job.model} · {job.seconds}s · {job.id[-8:]}")
    look = render.with_frames(look, _given_frame(job, "start"), _given_frame(job, "end"))
    data = _RENDERERS[variant](look, job.seconds)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        # Two downloads rendered at once and storage picked a fresh name for the loser;
        # the content is identical, so drop the duplicate and serve the first.
        default_storage.delete(saved)
    return name


def delete_all(job: Job) -> None:
    names = [path_for(job, variant) for variant in VARIANTS] + [f"{job.asset_dir()}/{f}" for f in FRAMES.values()]
    for name in names:
        if default_storage.exists(name):
            default_storage.delete(name)
