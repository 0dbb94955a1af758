"""A character's stills: up to three frames taken from its clip (or uploaded), which carry it to the
backends whose protocol takes reference images instead of registering characters.

Frames are taken with the static ffmpeg that imageio-ffmpeg ships, spread over the clip (at a fifth,
a half and four fifths of its length) so a turn of the head or a change of light is in them.
"""

from __future__ import annotations

import logging
import subprocess

import imageio_ffmpeg
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from characters.avatars import SAFE_INPUT
from characters.models import Character, CharacterStill, StillSource
from generations.providers.base import ReferenceImage
from sora_studio.files import local_path

log = logging.getLogger(__name__)

MAX_STILLS = 3
SHARES = (0.2, 0.5, 0.8)
LONGEST_SIDE = 1024


def frame_at(path: str, seconds: float) -> bytes | None:
    """One frame of the video at `path`, as a JPEG no larger than LONGEST_SIDE; None if ffmpeg cannot."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-ss",
        f"{seconds:.3f}",
        *SAFE_INPUT,
        "-i",
        path,
        "-frames:v",
        "1",
        "-vf",
        f"scale='min({LONGEST_SIDE},iw)':'min({LONGEST_SIDE},ih)':force_original_aspect_ratio=decrease,format=yuvj420p",
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "-q:v",
        "3",
        "pipe:1",
    ]
    try:
        result = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("stills: could not run ffmpeg: %s", exc)
        return None
    return result.stdout if result.returncode == 0 and result.stdout.startswith(b"\xff\xd8") else None


def take_from_clip(character: Character) -> int:
    """Fill the character's empty still positions with frames of its clip. Returns how many it has now.

    Safe to run twice or at once in two workers: a position is taken by its unique constraint."""
    have = set(character.stills.values_list("position", flat=True))
    if len(have) >= MAX_STILLS or not character.source_clip:
        return len(have)
    with local_path(character.source_clip) as path:
        try:
            _frames, duration = imageio_ffmpeg.count_frames_and_secs(path)
        except (OSError, RuntimeError) as exc:
            log.info("stills: %s is not a readable video: %s", character, exc)
            return len(have)
        for position, share in enumerate(SHARES, start=1):
            if position in have:
                continue
            data = frame_at(path, duration * share)
            if data is not None and _keep(character, position, data, StillSource.CLIP):
                have.add(position)
    return len(have)


def replace(character: Character, position: int, data: bytes) -> CharacterStill:
    """An uploaded still in `position` (1–3), in place of what was there."""
    CharacterStill.objects.filter(character=character, position=position).delete()
    still = CharacterStill(character=character, position=position, source=StillSource.UPLOAD)
    still.image.save("still.jpg", ContentFile(data), save=False)
    still.save()
    return still


def _keep(character: Character, position: int, data: bytes, source: str) -> bool:
    still = CharacterStill(character=character, position=position, source=source)
    still.image.save("still.jpg", ContentFile(data), save=False)
    try:
        with transaction.atomic():
            still.save()
    except IntegrityError:  # another worker took this position first
        still.image.delete(save=False)
        return False
    return True


def _chosen(characters, limit: int) -> list[tuple[Character, CharacterStill]]:
    """The stills shared out among the characters (each one's first still before anyone's second),
    at most `limit` in all."""
    per_character = [list(character.stills.all()) for character in characters]
    chosen = []
    for round_ in range(MAX_STILLS):
        for character, character_stills in zip(characters, per_character, strict=True):
            if round_ < len(character_stills) and len(chosen) < limit:
                chosen.append((character, character_stills[round_]))
    return chosen


def shares(characters, limit: int) -> dict[str, int]:
    """How many of its stills each character (by handle) gets to send."""
    counts = dict.fromkeys((c.handle for c in characters), 0)
    for character, _still in _chosen(characters, limit):
        counts[character.handle] += 1
    return counts


def reference_images(characters, limit: int) -> list[ReferenceImage]:
    """The stills that carry these characters to a reference-image backend."""
    images = []
    for character, still in _chosen(characters, limit):
        with still.image.open("rb") as handle:
            images.append(ReferenceImage(f"{character.handle}-{still.position}.jpg", handle.read(), "image/jpeg"))
    return images
