"""A character's avatar: the first frame of its stored clip, as a small square JPEG, else its initial.

Frames are grabbed with the static ffmpeg that imageio-ffmpeg ships (no system package). A clip
that ffmpeg cannot read is remembered for an hour so a page of avatars does not retry it each time.
"""

from __future__ import annotations

import logging
import subprocess

import imageio_ffmpeg
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils.html import escape

from characters.models import Character
from sora_studio.files import local_path

log = logging.getLogger(__name__)

# Read creators' clips as local video files only: no playlist, concat or network input however the file
# is dressed up (a ".mp4" that is really an HLS playlist must not pull other files into a still).
SAFE_INPUT = ("-protocol_whitelist", "file", "-format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm")
SIDE = 160  # px; shown at 48–64 px, so crisp on high-density screens too
FAILED_FOR = 60 * 60


def first_frame(field_file) -> bytes | None:
    """The clip's first frame, centre-cropped to a SIDE×SIDE JPEG; None if it is not a readable video."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        *SAFE_INPUT,
        "-i",
        "INPUT",
        "-frames:v",
        "1",
        "-vf",
        f"scale={SIDE}:{SIDE}:force_original_aspect_ratio=increase,crop={SIDE}:{SIDE},format=yuvj420p",
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "-q:v",
        "4",
        "pipe:1",
    ]
    try:
        with local_path(field_file) as path:
            command[command.index("INPUT")] = path
            result = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("avatar: could not run ffmpeg on %s: %s", field_file.name, exc)
        return None
    if result.returncode != 0 or not result.stdout.startswith(b"\xff\xd8"):
        log.info("avatar: no frame from %s: %s", field_file.name, result.stderr.decode(errors="replace")[-300:])
        return None
    return result.stdout


def ensure_avatar(character: Character) -> bool:
    """Give the character an avatar from its stored clip if it has none. True if it has one now."""
    if character.avatar:
        return True
    if not character.source_clip:
        return False
    failed_key = f"characters.avatar-failed:{character.pk}:{character.source_clip.name}"
    if cache.get(failed_key):
        return False
    data = first_frame(character.source_clip)
    if data is None:
        cache.set(failed_key, True, FAILED_FOR)
        return False
    character.avatar.save("avatar.jpg", ContentFile(data), save=False)
    # Compare-and-set: two requests may make one at the same moment; the first one stays.
    if Character.objects.filter(pk=character.pk, avatar="").update(avatar=character.avatar.name) == 1:
        return True
    character.avatar.delete(save=False)
    character.refresh_from_db(fields=["avatar"])
    return bool(character.avatar)


def initials_svg(character: Character) -> str:
    """The fallback avatar: the first letter of the character's name on a tinted disc."""
    letter = escape((character.name.strip() or character.handle)[:1].upper())
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" width="48" height="48">'
        '<rect width="48" height="48" fill="#e0e7ff"/>'
        '<text x="24" y="24" dy=".35em" text-anchor="middle" font-family="system-ui, sans-serif" '
        f'font-size="22" font-weight="700" fill="#3730a3">{letter}</text></svg>'
    )
