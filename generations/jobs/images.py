"""Start and end images: a video's first (and last) frame, given by the creator.

An image comes from an upload, from one of the creator's characters' stills, or from the last frame of one
of their finished videos (taken from the stored MP4 with the ffmpeg imageio-ffmpeg ships). Whatever its
source, it is checked before anything is sent anywhere: its type is sniffed from its bytes (never its name),
its size and pixel count are capped, and Pillow decodes all of it (a truncated or booby-trapped file fails
here, not at a provider). Then it is fitted to the video's size: scaled to cover the frame and centre-cropped,
which OpenAI requires (an `input_reference` must match the video's size exactly) and which gives every other
protocol a first frame of the shape it will render. The crop is what the creator sees and what is kept.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageOps

from characters.avatars import SAFE_INPUT, local_path

log = logging.getLogger(__name__)

START, END = "start", "end"
ROLES = (START, END)
ROLE_LABELS = {START: "start image", END: "end image"}

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000  # a 24-megapixel camera's photo passes; a 40-megapixel one does not
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
KEPT_QUALITY = 92

# What a file starts with, for the formats taken, and for files people rename by mistake.
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"RIFF", "WEBP"))
_LOOKS_LIKE = ((b"%PDF", "a PDF"), (b"GIF8", "a GIF"), (b"\x00\x00\x00", "a video"), (b"PK\x03\x04", "a zip file"))


class ImageProblem(ValueError):
    """An image that cannot be used, said so a creator can act on it."""


@dataclass(frozen=True)
class ImageInput:
    """An image asked for as a start or end image, before it is checked and fitted to the video.

    `source` is how it was chosen ("upload", "still", "last_frame"); `note` says which, in words
    ("photo.png", "still 1 of @mossy", "the last frame of video #12").
    """

    content: bytes
    source: str
    note: str


@dataclass(frozen=True)
class Fitted:
    """An image checked and cropped to the video's size: what is kept with the generation and sent."""

    content: bytes  # a JPEG
    width: int
    height: int
    source: str
    note: str
    content_type: str = "image/jpeg"


def sniff(data: bytes) -> str:
    """The format the bytes say they are (JPEG, PNG, WEBP), or ImageProblem naming what they seem to be."""
    for magic, kind in _MAGIC:
        if data.startswith(magic) and (kind != "WEBP" or data[8:12] == b"WEBP"):
            return kind
    if not data:
        return _refuse("The file is empty.")
    seems = next((what for magic, what in _LOOKS_LIKE if data.startswith(magic)), "")
    if not seems and _is_text(data[:512]):
        seems = "a text file"
    if data[4:8] == b"ftyp":
        seems = "a video"
    return _refuse(
        f"That file is {seems}, which cannot be used: send a JPEG, PNG or WebP image." if seems else _NOT_AN_IMAGE
    )


_NOT_AN_IMAGE = "That file is not an image that can be read: send a JPEG, PNG or WebP image."


def _refuse(message: str):
    raise ImageProblem(message)


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode(data: bytes) -> Image.Image:
    """The image in `data`, fully decoded, once its type, size and pixel count have been checked."""
    if len(data) > MAX_BYTES:
        raise ImageProblem(f"That image is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    kind = sniff(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError:
        raise ImageProblem(f"That image has too many pixels ({MAX_PIXELS // 1_000_000} megapixels at most).") from None
    except (OSError, SyntaxError, ValueError):
        raise ImageProblem(f"That file is not a {kind} image that can be read.") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        # Refused from its header, before a single pixel is decoded.
        raise ImageProblem(
            f"That image is {width}×{height} ({width * height / 1e6:.0f} megapixels); "
            f"{MAX_PIXELS // 1_000_000} megapixels at most."
        )
    try:
        image.load()  # every byte decoded: a truncated file fails here, not at a provider
    except Image.DecompressionBombError:
        raise ImageProblem(f"That image has too many pixels ({MAX_PIXELS // 1_000_000} megapixels at most).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        damaged = "truncated" in str(exc) or "broken" in str(exc)
        raise ImageProblem(
            "That image is cut short or damaged: it cannot be read to the end."
            if damaged
            else f"That file is not a {kind} image that can be read."
        ) from None
    return image


def fit(image: Image.Image, size: str) -> tuple[bytes, int, int]:
    """`image` scaled to cover `size` ("WIDTHxHEIGHT") and centre-cropped to it, as a JPEG."""
    width, height = parse_size(size)
    rgb = ImageOps.exif_transpose(image).convert("RGB")
    cropped = ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    out = io.BytesIO()
    cropped.save(out, "JPEG", quality=KEPT_QUALITY)
    return out.getvalue(), width, height


def parse_size(size: str) -> tuple[int, int]:
    try:
        width, height = (int(side) for side in str(size).lower().split("x"))
    except ValueError:
        raise ImageProblem(f"{str(size)[:20]!r} is not a video size (WIDTHxHEIGHT).") from None
    if not (0 < width <= 8192 and 0 < height <= 8192):
        raise ImageProblem(f"{size!r} is not a video size an image can be fitted to.")
    return width, height


def prepare(given: ImageInput, size: str) -> Fitted:
    """Check `given` and fit it to the video's size: what is kept and sent. ImageProblem if it cannot be used."""
    content, width, height = fit(decode(given.content), size)
    return Fitted(content, width, height, given.source, given.note)


# --- Where an image comes from -----------------------------------------------------------------------


def from_upload(upload) -> ImageInput:
    """An uploaded file (a Django UploadedFile), read only once its declared size is within the cap."""
    if upload.size is not None and upload.size > MAX_BYTES:
        raise ImageProblem(f"That image is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    data = upload.read(MAX_BYTES + 1)
    decode(data)  # refused now, next to the field, rather than when the video is started
    return ImageInput(data, "upload", (upload.name or "upload")[-120:])


def from_still(still) -> ImageInput:
    """One of a character's stills (characters.models.CharacterStill)."""
    with still.image.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return ImageInput(data, "still", f"still {still.position} of @{still.character.handle}")


def from_generation_image(stored) -> ImageInput:
    """An image kept with a generation (a GenerationImage), to start another video from it (a retry, a remix)."""
    with stored.image.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return ImageInput(data, stored.source, stored.note)


def last_frame_of(generation) -> ImageInput:
    """The last frame of one of the creator's finished videos, taken from the stored MP4."""
    if generation.status != "completed" or not generation.video:
        raise ImageProblem(f"Video #{generation.pk} is not finished: its last frame cannot be taken yet.")
    data = last_frame(generation.video)
    if data is None:
        raise ImageProblem(f"The last frame of video #{generation.pk} could not be read from its file.")
    return ImageInput(data, "last_frame", f"the last frame of video #{generation.pk}")


def last_frame(field_file) -> bytes | None:
    """The last frame of a stored video, as a PNG (lossless: it may start the next video); None if ffmpeg cannot.

    ffmpeg seeks to a second before the end and writes every frame it decodes over the same file, so the file
    holds the very last frame when it stops, whatever the clip's keyframes."""
    with local_path(field_file) as path, tempfile.TemporaryDirectory(prefix="last-frame-") as workdir:
        target = Path(workdir) / "last.png"
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-sseof",
            "-1",
            *SAFE_INPUT,
            "-i",
            path,
            "-update",
            "1",
            "-vf",
            "format=rgb24",
            "-y",
            str(target),
        ]
        try:
            result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("last frame: could not run ffmpeg: %s", exc)
            return None
        if result.returncode != 0 or not target.exists():
            log.info("last frame: none from %s: %s", field_file.name, result.stderr.decode(errors="replace")[-300:])
            return None
        return target.read_bytes()


def first_frame(field_file) -> bytes | None:
    """The first frame of a stored video, as a PNG (to check a video against the image it started from)."""
    with local_path(field_file) as path:
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            *SAFE_INPUT,
            "-i",
            path,
            "-frames:v",
            "1",
            "-vf",
            "format=rgb24",
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "pipe:1",
        ]
        try:
            result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return result.stdout if result.returncode == 0 and result.stdout.startswith(b"\x89PNG") else None
