"""Real, playable stand-in assets: an H.264 MP4, a WebP thumbnail and a JPEG spritesheet.

Everything is derived from the prompt (colours from its hash, its text drawn on every frame), so
two prompts give visibly different videos and the same prompt always gives the same one. Frames
are drawn with Pillow and piped as raw RGB into the static ffmpeg that imageio-ffmpeg ships, so no
system package is needed.

A job given a start image (a first frame: OpenAI's input_reference, Veo's image, Runway's promptImage,
a model's start_image) opens on exactly that image, which then dissolves into the animation over the
first second; given an end image, the clip dissolves into it over its last second and ends on it. So a
test can compare a video's first (or last) frame with the image it was given.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont, ImageOps

FPS = 12
# The long side of every rendered frame. Small on purpose: the simulator proves the pipeline
# (download, store, play), not picture quality, and small files keep tests fast.
LONG_SIDE = 320
# Rendering is fast (a 20 s clip takes ~0.25 s), so clips are as long as the job asked for; the
# cap only protects the server from a task_api `duration` far beyond what providers offer.
MAX_SECONDS = 30
SPRITE_COLUMNS = 5
SPRITE_ROWS = 2
DISSOLVE_FRAMES = FPS  # a second from the start image into the animation, and from it into the end image


class RenderError(RuntimeError):
    """ffmpeg failed; the caller answers 500 because that is what a broken provider does."""


@dataclass(frozen=True)
class Look:
    """Everything that makes one prompt's video look like itself."""

    width: int
    height: int
    background: tuple[int, int, int]
    accent: tuple[int, int, int]
    phase: float
    text: str
    label: str
    # The first and last frame the client gave, already the frame's size (see `with_frames`).
    start: Image.Image | None = None
    end: Image.Image | None = None


def with_frames(look: Look, start: bytes | None = None, end: bytes | None = None) -> Look:
    """`look` opening on the image `start` and ending on `end` (encoded images), each scaled to cover the frame
    and centre-cropped, as a provider fits a first frame to the video it makes."""

    def framed(data: bytes | None) -> Image.Image | None:
        if not data:
            return None
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
        return ImageOps.fit(rgb, (look.width, look.height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))

    return replace(look, start=framed(start), end=framed(end))


def frame_size(size: str) -> tuple[int, int]:
    """Scale a `WIDTHxHEIGHT` request down to LONG_SIDE, keeping the aspect and even sides (yuv420p)."""
    try:
        width, height = (int(part) for part in size.lower().split("x"))
    except ValueError:
        width, height = 1280, 720
    scale = LONG_SIDE / max(width, height)
    return _even(width * scale), _even(height * scale)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return int(r * 255), int(g * 255), int(b * 255)


def look_for(prompt: str, size: str, label: str) -> Look:
    digest = hashlib.sha256(prompt.encode()).digest()
    hue = digest[0] / 255
    width, height = frame_size(size)
    return Look(
        width=width,
        height=height,
        background=_colour(hue, 0.55, 0.35),
        accent=_colour(hue + 0.45, 0.75, 0.95),
        phase=digest[1] / 255 * 2 * math.pi,
        text=prompt.strip()[:240],
        label=label,
    )


def _text_layer(look: Look) -> Image.Image:
    """The prompt and label, drawn once and pasted on every frame (drawing text per frame is slow)."""
    layer = Image.new("RGBA", (look.width, look.height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(9, look.width // 24)
    font = ImageFont.load_default(size=size)
    # Pillow's bundled font averages a little over half its size per character.
    lines = textwrap.wrap(look.text, width=max(12, int((look.width - 16) / (size * 0.55))))[:6]
    y = 8
    for line in lines:
        draw.text((9, y + 1), line, font=font, fill=(0, 0, 0, 160))
        draw.text((8, y), line, font=font, fill=(255, 255, 255, 255))
        y += size + 3
    small_size = max(8, look.width // 32)
    small = ImageFont.load_default(size=small_size)
    draw.text((8, look.height - small_size - 8), look.label, font=small, fill=(255, 255, 255, 200))
    return layer


def _frame(look: Look, index: int, total: int, text: Image.Image) -> Image.Image:
    t = index / FPS
    # A slow brightness breathing plus a moving disc and a progress bar: enough motion that a
    # player visibly advances, cheap enough to draw hundreds of frames in well under a second.
    breathe = 0.85 + 0.15 * math.sin(t * 1.3 + look.phase)
    background = tuple(int(channel * breathe) for channel in look.background)
    image = Image.new("RGB", (look.width, look.height), background)
    draw = ImageDraw.Draw(image)
    radius = min(look.width, look.height) // 7
    cx = look.width / 2 + (look.width / 2 - radius - 4) * math.sin(t * 1.7 + look.phase)
    cy = look.height * 0.6 + (look.height * 0.25 - radius) * math.cos(t * 1.1 + look.phase)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=look.accent)
    bar = int(look.width * (index + 1) / max(1, total))
    draw.rectangle((0, look.height - 4, bar, look.height), fill=look.accent)
    image.paste(text, (0, 0), text)
    return image


def frames(look: Look, seconds: int) -> Iterator[Image.Image]:
    total = max(1, min(seconds, MAX_SECONDS)) * FPS
    text = _text_layer(look)
    for index in range(total):
        yield _with_given_frames(look, index, total, _frame(look, index, total, text))


def _with_given_frames(look: Look, index: int, total: int, drawn: Image.Image) -> Image.Image:
    """The drawn frame, dissolved with the start image near the start and the end image near the end."""
    if look.end is not None and index >= total - DISSOLVE_FRAMES:
        # 1.0 on the very last frame: the clip ends on exactly the end image.
        weight = (index - (total - DISSOLVE_FRAMES)) / max(1, DISSOLVE_FRAMES - 1)
        drawn = Image.blend(drawn, look.end, min(1.0, weight))
    if look.start is not None and index < DISSOLVE_FRAMES:
        # 1.0 on the very first frame: the clip opens on exactly the start image.
        weight = 1 - index / DISSOLVE_FRAMES
        drawn = Image.blend(drawn, look.start, weight)
    return drawn


def render_mp4(look: Look, seconds: int) -> bytes:
    """Encode the clip as H.264 in an MP4 with the index up front, so browsers can start playing at once."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{look.width}x{look.height}",
        "-r",
        str(FPS),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-y",
    ]
    raw = b"".join(frame.tobytes() for frame in frames(look, seconds))
    # +faststart rewrites the file to move the index to the front, which needs a seekable
    # output: ffmpeg writes to a temporary file, not to a pipe.
    with tempfile.TemporaryDirectory(prefix="sora-sim-") as workdir:
        target = Path(workdir) / "clip.mp4"
        result = subprocess.run([*command, str(target)], input=raw, capture_output=True, timeout=60, check=False)
        if result.returncode != 0 or not target.exists():
            raise RenderError(result.stderr.decode(errors="replace")[-500:])
        return target.read_bytes()


def render_thumbnail(look: Look, seconds: int) -> bytes:
    total = max(1, min(seconds, MAX_SECONDS)) * FPS
    image = _frame(look, total // 2, total, _text_layer(look))
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()


def render_spritesheet(look: Look, seconds: int) -> bytes:
    """A grid of evenly spaced frames, the way players show previews while scrubbing."""
    total = max(1, min(seconds, MAX_SECONDS)) * FPS
    count = SPRITE_COLUMNS * SPRITE_ROWS
    text = _text_layer(look)
    sheet = Image.new("RGB", (look.width * SPRITE_COLUMNS, look.height * SPRITE_ROWS))
    for slot in range(count):
        index = min(total - 1, slot * total // count)
        column, row = slot % SPRITE_COLUMNS, slot // SPRITE_COLUMNS
        sheet.paste(_frame(look, index, total, text), (column * look.width, row * look.height))
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=75)
    return buffer.getvalue()


def looks_like_video(data: bytes) -> bool:
    """Sniff the container instead of trusting a filename or Content-Type a client made up."""
    if len(data) < 12:
        return False
    is_iso_media = data[4:8] == b"ftyp"  # MP4, MOV, M4V, 3GP
    is_matroska = data[:4] == b"\x1a\x45\xdf\xa3"  # WebM, MKV
    return is_iso_media or is_matroska
