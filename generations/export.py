"""Leave with your work: a zip of videos, thumbnails and a manifest.json that describes them.

Provider links expire and services close; the zip holds everything needed to carry a series (or
all of a creator's work) elsewhere: files plus prompts, characters, backends, models, seconds,
sizes and costs.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from characters.models import Character
from generations.models import CostEntry, Generation, Series

MANIFEST_VERSION = 1


def _usd(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001')).normalize():f}"


def _generation_entry(generation: Generation, folder: str) -> tuple[dict, list[tuple[str, str]]]:
    files = []
    entry = {
        "id": generation.pk,
        "uuid": str(generation.uuid),
        "status": generation.status,
        "prompt": generation.prompt,
        "prompt_sent": generation.prompt_sent,
        "characters": [f"@{c.handle}" for c in generation.characters.all()],
        "backend": generation.backend.name,
        "protocol": generation.backend.protocol,
        "remote_id": generation.remote_id,
        "model": generation.model,
        "seconds": generation.seconds,
        "size": generation.size,
        "created_at": generation.created_at.isoformat(),
        "completed_at": generation.completed_at.isoformat() if generation.completed_at else None,
        "error": generation.error_message or None,
        "cost_usd": _usd(generation.cost_entries.net()),
        "cost_entries": [
            {"kind": e.kind, "amount_usd": _usd(e.amount), "at": e.created_at.isoformat(), "note": e.note}
            for e in generation.cost_entries.all()
        ],
        "video": None,
        "thumbnail": None,
    }
    for field in ("video", "thumbnail"):
        stored = getattr(generation, field)
        if stored:
            name = f"{folder}/{generation.pk}-{field}{stored.name[stored.name.rfind('.'):]}"
            entry[field] = name
            files.append((name, stored.path))
    return entry, files


def _character_entry(character: Character) -> dict:
    return {
        "handle": f"@{character.handle}",
        "name": character.name,
        "description": character.description,
        "source_url": character.source_url or None,
        "source_clip": f"characters/{character.handle}{character.source_clip.name[character.source_clip.name.rfind('.'):]}"
        if character.source_clip else None,
        "bindings": [
            {"backend": b.backend.name, "status": b.status, "remote_id": b.remote_id}
            for b in character.bindings.all()
        ],
    }


def _generations(queryset):
    return queryset.select_related("backend", "scene__series").prefetch_related(
        "characters", Prefetch("cost_entries", queryset=CostEntry.objects.order_by("created_at", "pk"))
    )


def _write(manifest: dict, files: list[tuple[str, str]]):
    handle = tempfile.TemporaryFile()
    with zipfile.ZipFile(handle, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2), compress_type=zipfile.ZIP_DEFLATED)
        for name, path in files:
            archive.write(path, name, compress_type=zipfile.ZIP_STORED)  # MP4/WebP are compressed already
    handle.seek(0)
    return handle


def _characters(characters) -> tuple[list[dict], list[tuple[str, str]]]:
    entries, files = [], []
    for character in characters:
        entry = _character_entry(character)
        entries.append(entry)
        if entry["source_clip"]:
            files.append((entry["source_clip"], character.source_clip.path))
    return entries, files


def series_zip(series: Series):
    """A temporary file holding the series' zip, positioned at its start."""
    files: list[tuple[str, str]] = []
    scenes = []
    for scene in series.scenes.all():
        takes = []
        for take in _generations(scene.takes.order_by("created_at")):
            entry, take_files = _generation_entry(take, f"scene-{scene.position:03d}")
            entry["chosen"] = take.pk == scene.chosen_take_id
            takes.append(entry)
            files += take_files
        scenes.append({"position": scene.position, "prompt": scene.prompt, "takes": takes})
    characters, clip_files = _characters(series.characters.prefetch_related("bindings__backend"))
    manifest = {
        "version": MANIFEST_VERSION,
        "exported_at": timezone.now().isoformat(),
        "series": {"title": series.title, "description": series.description, "model": series.model,
                   "seconds": series.seconds, "size": series.size},
        "characters": characters,
        "scenes": scenes,
    }
    return _write(manifest, files + clip_files)


def everything_zip(user):
    """All of a creator's generations and characters."""
    files: list[tuple[str, str]] = []
    generations = []
    for generation in _generations(Generation.objects.filter(owner=user).order_by("created_at")):
        entry, gen_files = _generation_entry(generation, "generations")
        entry["series"] = generation.scene.series.title if generation.scene_id else None
        generations.append(entry)
        files += gen_files
    characters, clip_files = _characters(Character.objects.owned_by(user).prefetch_related("bindings__backend"))
    manifest = {
        "version": MANIFEST_VERSION,
        "exported_at": timezone.now().isoformat(),
        "owner": user.get_username(),
        "characters": characters,
        "generations": generations,
    }
    return _write(manifest, files + clip_files)
