"""Leave with your work: a zip of videos, thumbnails and a manifest.json that describes them.

Provider links expire and services close; the zip holds everything needed to carry a series (or
all of a creator's work) elsewhere: files plus prompts, characters, backends, models, seconds,
sizes, costs and which take is each scene's.

A library of thousands of videos takes minutes to copy, so a zip is never built inside a request:
`start()` records an Export and queues `build()` for a worker, which reports progress as it copies
files and stores the zip through the storage API (on a bucket, downloaded by a signed link).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import uuid
import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.text import slugify

from characters.models import Character, CharacterBinding
from generations.billing.models import CostEntry, net_of
from generations.billing.money import exact
from generations.jobs.models import Generation
from generations.providers.models import Backend
from generations.states import Status
from generations.storyboards import board
from generations.storyboards.models import Export, ExportStatus, Series
from sora_studio import queue
from sora_studio.files import reading, signs_links

log = logging.getLogger(__name__)

MANIFEST_VERSION = 2
ZIP64_FROM = 2**31 - 1
CHUNK = 1024 * 1024
# From a bucket, files are fetched this many at a time ahead of the zip writer; each is held in memory up
# to SPOOL_BYTES, on disk beyond.
FETCH_THREADS = 8
SPOOL_BYTES = 8 * 1024 * 1024
# A build reports progress (and renews its lease) at most this often, however many small files it copies.
REPORT_EVERY_SECONDS = 0.5


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


class LostLease(Exception):
    """Another build took this export over (this one was thought dead): stop without writing anything."""


class _Progress:
    """Counts copied files and renews the build's lease, writing to the database at most every
    REPORT_EVERY_SECONDS."""

    def __init__(self, export: Export, holder: str):
        self.export, self.holder = export, holder
        self.done, self.total = 0, 0
        self.reported_at = 0.0

    def start(self, total: int) -> None:
        self.total = total
        self._report()

    def file_done(self) -> None:
        self.done += 1
        self.alive()

    def alive(self) -> None:
        if time.monotonic() - self.reported_at >= REPORT_EVERY_SECONDS:
            self._report()

    def _report(self) -> None:
        if not self.export.report(self.holder, self.done, self.total, settings.EXPORT_LEASE_SECONDS):
            raise LostLease
        self.reported_at = time.monotonic()


def _local_files(items: list[_File]):
    """(item, open file or None if missing, size) in order, read straight from disk storage."""
    for item in items:
        try:
            with reading(item.stored) as (source, size):
                yield item, source, size
        except FileNotFoundError:
            yield item, None, 0


def _fetch(item: _File):
    """In a thread: the file from the bucket into a temporary file (in memory when small) and its size,
    or None if it is missing."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to the writer, which closes it
    try:
        with reading(item.stored) as (source, size):
            shutil.copyfileobj(source, spool, CHUNK)
    except FileNotFoundError:
        spool.close()
        return None
    spool.seek(0)
    return spool, size


def _remote_files(items: list[_File], progress: _Progress | None):
    """(item, file or None if missing, size) in order, FETCH_THREADS fetched ahead: a bucket answers
    each request after a round trip, so one at a time would spend most of the export waiting."""
    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="export-fetch") as pool:
        ahead = deque(pool.submit(_fetch, item) for item in items[:FETCH_THREADS])
        for index, item in enumerate(items):
            if index + FETCH_THREADS < len(items):
                ahead.append(pool.submit(_fetch, items[index + FETCH_THREADS]))
            future = ahead.popleft()
            while True:
                try:
                    fetched = future.result(timeout=REPORT_EVERY_SECONDS)
                    break
                except TimeoutError:  # a large file: keep the lease while it arrives
                    if progress:
                        progress.alive()
            if fetched is None:
                yield item, None, 0
                continue
            spool, size = fetched
            with spool:
                yield item, spool, size


def _write(manifest: dict, items: list[_File], progress: _Progress | None = None):
    """The zip in a temporary file, positioned at its start. A file missing from storage is noted, not fatal."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - the caller stores it, then closes it
    missing = []
    remote = bool(items) and signs_links(items[0].stored)
    with zipfile.ZipFile(handle, "w") as archive:
        for item, source, size in _remote_files(items, progress) if remote else _local_files(items):
            if source is None:
                log.warning("export: %s is missing from storage", item.stored.name)
                item.entry[item.key] = None
                missing.append(item.name)
            else:
                # MP4/WebP/JPEG are compressed already: stored as they are (the archive's default).
                with archive.open(item.name, "w", force_zip64=size > ZIP64_FROM) as target:
                    while data := source.read(CHUNK):
                        target.write(data)
                        if progress:
                            progress.alive()
            if progress:
                progress.file_done()
        manifest["missing_files"] = missing
        if "playlist" in manifest:
            manifest["playlist"] = [name for name in manifest["playlist"] if name not in missing]
        # Written last so it can name what was missing.
        archive.writestr(
            "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False), compress_type=zipfile.ZIP_DEFLATED
        )
    handle.seek(0)
    return handle


def series_plan(series: Series) -> tuple[dict, list[_File]]:
    """The series' manifest and the files its zip holds: each scene's takes, the characters' clips."""
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
    return manifest, files + clip_files


def everything_plan(user) -> tuple[dict, list[_File]]:
    """The manifest and files of all of a creator's generations, series and characters."""
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
    return manifest, files + clip_files


def write_zip(plan: tuple[dict, list[_File]]):
    """A plan's zip in a temporary file, here and now (for scripts and tests; pages use start())."""
    return _write(*plan)


# --- Built by a worker ------------------------------------------------------------------------------


def _describe(user: AbstractBaseUser, series: Series | None) -> dict:
    if series is not None:
        return {
            "series": series,
            "scope": f"series:{series.pk}",
            "title": series.title,
            "filename": f"{slugify(series.title) or 'series'}-{series.pk}.zip",
        }
    name = slugify(user.get_username()) or "studio"
    return {
        "series": None,
        "scope": Export.EVERYTHING,
        "title": "All my work",
        "filename": f"sora-studio-{name}-{timezone.localdate():%Y-%m-%d}.zip",
    }


def _create(user: AbstractBaseUser, series: Series | None) -> tuple[Export, bool]:
    """The unfinished export of this thing, or a new queued one (True)."""
    fields = _describe(user, series)
    unfinished = Export.objects.unfinished().filter(created_by=user, scope=fields["scope"])
    if existing := unfinished.first():
        return existing, False
    lease_until = timezone.now() + timedelta(seconds=settings.EXPORT_LEASE_SECONDS)
    try:
        with transaction.atomic():
            return Export.objects.create(created_by=user, lease_until=lease_until, **fields), True
    except IntegrityError:  # the twin request won the race
        return unfinished.get(), False


def start(user: AbstractBaseUser, series: Series | None = None) -> Export:
    """Queue the export of a series (or of everything `user` made, when None). An export of the same
    thing already under way is returned instead of a second one (a double click, two tabs)."""
    export, created = _create(user, series)
    if created:
        queue.build_export_on_commit(export.pk)
    return export


def build_here(user: AbstractBaseUser, series: Series | None = None, wait_seconds: float = 3600) -> Export:
    """Build the export in this process (`manage.py export`), or wait for the worker already building it."""
    export, _created = _create(user, series)
    build(export.pk)
    deadline = time.monotonic() + wait_seconds
    export.refresh_from_db()
    while not export.is_finished and time.monotonic() < deadline:
        time.sleep(0.5)
        build(export.pk)  # claims it if its builder stopped renewing the lease
        export.refresh_from_db()
    return export


def resume_if_stalled(export: Export) -> bool:
    """Queue the export again if its build stopped (dead worker, dropped task). Pages call this when
    they look at an unfinished export, so nothing waits on a task that no longer exists."""
    if export.is_finished or not export.requeue_if_stalled(settings.EXPORT_LEASE_SECONDS):
        return False
    log.warning("export %s stalled (attempt %s); queued again", export.pk, export.attempts)
    queue.build_export_on_commit(export.pk)
    return True


def build(export_id: int) -> None:
    """Build the export's zip and store it. Safe to run twice, or after a build that died halfway: a
    build holds a lease on the row, and only the holder may report progress or finish."""
    export = Export.objects.filter(pk=export_id).select_related("series", "created_by").first()
    holder = uuid.uuid4().hex
    if export is None or not export.claim(holder, settings.EXPORT_LEASE_SECONDS):
        return  # finished, or another build holds it
    if export.attempts > settings.EXPORT_MAX_ATTEMPTS:
        export.fail(holder, f"The export stopped {export.attempts - 1} times before it was done. Try again later.")
        return
    if export.scope != Export.EVERYTHING and export.series is None:
        export.fail(holder, "The series was deleted before its export was built.")
        return
    progress = _Progress(export, holder)
    try:
        plan = series_plan(export.series) if export.series is not None else everything_plan(export.created_by)
        progress.start(len(plan[1]))
        with _write(*plan, progress=progress) as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            stored = export.file.storage.save(
                export.file.field.generate_filename(export, export.filename), File(handle)
            )
    except LostLease:
        log.warning("export %s: another build took it over; this one stops", export.pk)
        return
    except Exception:
        log.exception("export %s failed", export.pk)
        export.fail(
            holder, "Something went wrong while building the export. Try again; if it fails again, tell an admin."
        )
        return
    missing = len(plan[0]["missing_files"])
    if not export.finish(holder, stored, size, missing):
        export.file.storage.delete(stored)  # taken over meanwhile: the other build's zip is the one kept
        return
    _forget_older(export)


def _forget_older(export: Export) -> None:
    """Keep one finished export per creator and scope, the newest: zips of a whole library are large."""
    older = Export.objects.filter(
        created_by=export.created_by_id, scope=export.scope, created_at__lte=export.created_at
    )
    for old in older.exclude(pk=export.pk).exclude(status__in=[ExportStatus.QUEUED, ExportStatus.BUILDING]):
        if old.file:
            old.file.delete(save=False)
        old.delete()
