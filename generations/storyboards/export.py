"""Leave with your work: a zip of videos, thumbnails and a manifest.json that describes them.

Provider links expire and services close; the zip holds everything needed to carry a series (or
all of a creator's work) elsewhere: files plus prompts, characters, backends, models, seconds,
sizes, costs and which take is each scene's.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from characters.models import Character, CharacterBinding
from generations.billing.models import CostEntry, net_of
from generations.billing.money import exact
from generations.jobs.models import Generation
from generations.providers.models import Backend
from generations.states import Status
from generations.storyboards import board
from generations.storyboards.models import Series

log = logging.getLogger(__name__)

MANIFEST_VERSION = 2
ZIP64_FROM = 2**31 - 1


def _extension(name: str, default: str) -> str:
    return name[name.rfind(".") :] if "." in name.rsplit("/", 1)[-1] else default


@dataclass
class _File:
    """A stored file to copy into the zip as `name`; `entry[key]` names it in the manifest."""

    name: str
    stored: FieldFile
    entry: dict
    key: str

    def __post_init__(self):
        self.entry[self.key] = self.name


def _generation_entry(generation: Generation, folder: str) -> tuple[dict, list[_File]]:
    entries = list(generation.cost_entries.all())  # prefetched, oldest first
    entry = {
        "id": generation.pk,
        "uuid": str(generation.uuid),
        "status": generation.status,
        "prompt": generation.prompt,
        "prompt_sent": generation.prompt_sent,
        "characters": [f"@{c.handle}" for c in generation.characters.all()],
        # How each character reached the backend: "its id char_… and its name", "2 reference images and its name".
        "characters_sent_as": {f"@{handle}": how for handle, how in generation.characters_travel.items()},
        "backend": generation.backend.name,
        "protocol": generation.backend.protocol,
        "remote_id": generation.remote_id,
        "remix_of": generation.remix_of_id,
        "model": generation.model,
        "seconds": str(generation.seconds),  # a string, as manifest version 2 has it
        "size": generation.size,
        "routing_reason": generation.routing_reason,
        "created_at": generation.created_at.isoformat(),
        "completed_at": generation.completed_at.isoformat() if generation.completed_at else None,
        "error": generation.error_message or None,
        "cost_usd": exact(net_of(entries)),
        "cost_entries": [
            {"kind": e.kind, "amount_usd": exact(e.amount), "at": e.created_at.isoformat(), "note": e.note}
            for e in entries
        ],
        "video": None,
        "thumbnail": None,
        # The start and end images the video was made from, as they were sent (cropped to its size).
        "images": {},
    }
    files = []
    for field, default in (("video", ".mp4"), ("thumbnail", ".webp")):
        stored = getattr(generation, field)
        if stored:
            files.append(
                _File(f"{folder}/{generation.pk}-{field}{_extension(stored.name, default)}", stored, entry, field)
            )
    for kept in generation.images.all():  # prefetched
        image = {"file": None, "source": kept.source, "note": kept.note, "size": f"{kept.width}x{kept.height}"}
        entry["images"][kept.role] = image
        files.append(_File(f"{folder}/{generation.pk}-{kept.role}-image.jpg", kept.image, image, "file"))
    return entry, files


def _character_entry(character: Character) -> tuple[dict, list[_File]]:
    entry = {
        "handle": f"@{character.handle}",
        "name": character.name,
        "description": character.description,
        "source_url": character.source_url or None,
        "source_generation": character.source_generation_id,
        "source_clip": None,
        "avatar": None,
        "bindings": [
            {
                "backend": b.backend.name,
                "protocol": b.backend.protocol,
                "status": b.status,
                "remote_id": b.remote_id,
                "error": b.error or None,
                "cost_usd": exact(net_of(b.cost_entries.all())),
            }
            for b in character.bindings.all()
        ],
    }
    files = []
    for field, default, suffix in (("source_clip", ".mp4", ""), ("avatar", ".jpg", "-avatar")):
        stored = getattr(character, field)
        if stored:
            files.append(
                _File(f"characters/{character.handle}{suffix}{_extension(stored.name, default)}", stored, entry, field)
            )
    return entry, files


def _generations(queryset):
    return (
        queryset.filter(deleted_at__isnull=True)
        .select_related("backend")
        .prefetch_related(
            "characters", "images", Prefetch("cost_entries", queryset=CostEntry.objects.order_by("created_at", "pk"))
        )
    )


def _characters(queryset) -> tuple[list[dict], list[_File]]:
    bindings = CharacterBinding.objects.select_related("backend").prefetch_related("cost_entries")
    entries, files = [], []
    for character in queryset.prefetch_related(Prefetch("bindings", queryset=bindings)).order_by("handle"):
        entry, clip_files = _character_entry(character)
        entries.append(entry)
        files += clip_files
    return entries, files


def _backends(generations: list[Generation]) -> list[dict]:
    """Which providers made what: enough to find a job there again (never the key)."""
    ids = {g.backend_id for g in generations}
    return [
        {"name": b.name, "protocol": b.protocol, "base_url": b.base_url, "tier": b.tier}
        for b in Backend.objects.filter(pk__in=ids).order_by("name")
    ]


def _series_entry(series: Series, scenes: list[board.SceneCard], take_ref) -> dict:
    return {
        "title": series.title,
        "description": series.description,
        "backend": series.backend.name if series.backend_id else "automatic",
        "model": series.model,
        "seconds": str(series.seconds),
        "size": series.size,
        "characters": [f"@{c.handle}" for c in series.characters.all()],
        "created_at": series.created_at.isoformat(),
        "scenes": [
            {
                "number": card.number,
                "prompt": card.scene.prompt,
                # The take that plays in the series: the one the creator chose, else the newest completed.
                "chosen_take": card.take.pk if card.take else None,
                "chosen_by": "creator"
                if card.scene.chosen_take_id and card.take and card.take.pk == card.scene.chosen_take_id
                else "newest completed",
                "takes": [take_ref(take) for take in card.takes],
            }
            for card in scenes
        ],
    }


def _write(manifest: dict, files: list[_File]):
    """The zip in a temporary file, positioned at its start. A file missing from storage is noted, not fatal."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - the response streams it, then closes it
    missing = []
    with zipfile.ZipFile(handle, "w") as archive:
        for item in files:
            try:
                # MP4/WebP/JPEG are compressed already: stored as they are (the archive's default).
                with (
                    item.stored.open("rb") as source,
                    archive.open(item.name, "w", force_zip64=item.stored.size > ZIP64_FROM) as target,
                ):
                    shutil.copyfileobj(source, target, 1024 * 1024)
            except FileNotFoundError:
                log.warning("export: %s is missing from storage", item.stored.name)
                item.entry[item.key] = None
                missing.append(item.name)
        manifest["missing_files"] = missing
        if "playlist" in manifest:
            manifest["playlist"] = [name for name in manifest["playlist"] if name not in missing]
        # Written last so it can name what was missing.
        archive.writestr(
            "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False), compress_type=zipfile.ZIP_DEFLATED
        )
    handle.seek(0)
    return handle


def series_zip(series: Series):
    """A temporary file holding the series' zip: each scene's takes, the characters, the manifest."""
    scenes = board.scenes_with_takes(series, _generations(Generation.objects.all()))
    files: list[_File] = []
    take_entries: dict[int, dict] = {}
    playlist = []
    for card in scenes:
        for take in card.takes:
            entry, take_files = _generation_entry(take, f"scene-{card.number:03d}")
            entry["chosen"] = card.take is not None and take.pk == card.take.pk
            take_entries[take.pk] = entry
            files += take_files
            if entry["chosen"] and take.status == Status.COMPLETED and entry["video"]:
                playlist.append(entry["video"])
    all_takes = [take for card in scenes for take in card.takes]
    # The series' cast plus anyone mentioned in a take: every character its videos depend on.
    cast = {c.pk for c in series.characters.all()} | {c.pk for t in all_takes for c in t.characters.all()}
    character_entries, clip_files = _characters(Character.objects.filter(owner=series.owner, pk__in=cast))
    manifest = {
        "version": MANIFEST_VERSION,
        "exported_at": timezone.now().isoformat(),
        "series": _series_entry(series, scenes, lambda take: take_entries[take.pk]),
        "playlist": playlist,
        "total_cost_usd": exact(sum((Decimal(e["cost_usd"]) for e in take_entries.values()), Decimal(0))),
        "backends": _backends(all_takes),
        "characters": character_entries,
    }
    return _write(manifest, files + clip_files)


def everything_zip(user):
    """All of a creator's generations, series and characters."""
    files: list[_File] = []
    generations = list(_generations(Generation.objects.filter(owner=user)).order_by("created_at", "pk"))
    entries = []
    for generation in generations:
        entry, gen_files = _generation_entry(generation, "generations")
        entry.update(series=None, scene=None)
        entries.append(entry)
        files += gen_files
    series_entries = []
    by_id = {e["id"]: e for e in entries}
    for series in (
        Series.objects.filter(owner=user)
        .select_related("backend")
        .prefetch_related("characters")
        .order_by("created_at", "pk")
    ):
        scenes = board.scenes_with_takes(
            series,
            Generation.objects.filter(owner=user).only("pk", "scene_id", "status", "created_at", "deleted_at", "video"),
        )
        series_entries.append(_series_entry(series, scenes, lambda take: take.pk))
        for card in scenes:
            for take in card.takes:
                if take.pk in by_id:
                    by_id[take.pk].update(series=series.title, scene=card.number)
    character_entries, clip_files = _characters(Character.objects.owned_by(user))
    manifest = {
        "version": MANIFEST_VERSION,
        "exported_at": timezone.now().isoformat(),
        "owner": user.get_username(),
        "total_cost_usd": exact(sum((Decimal(e["cost_usd"]) for e in entries), Decimal(0))),
        "backends": _backends(generations),
        "characters": character_entries,
        "series": series_entries,
        "generations": entries,
    }
    return _write(manifest, files + clip_files)
