"""Pictures to start videos from, and how close a video's first or last frame is to one.

A test picture has structure (a gradient, blocks of colour, a disc) so that a frame that only shares its average
colour, or that is shifted or cropped differently, is told apart; `difference` is the mean absolute difference
of the two images' pixels (0–255, per channel), after scaling the picture to the frame's size.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
from PIL import Image, ImageChops, ImageDraw, ImageOps, ImageStat

# H.264 at the simulator's small size keeps a frame within a few levels of its source; a different picture
# (or the drawn animation) is tens of levels away.
CLOSE = 12.0


def picture(width: int = 640, height: int = 360, *, seed: int = 1, kind: str = "PNG") -> bytes:
    """A test picture: a diagonal gradient, three blocks and a disc, placed and coloured by `seed`."""
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for y in range(height):
        for x in range(width):
            pixels[x, y] = ((x * 255 // width + seed * 40) % 256, (y * 255 // height) % 256, (seed * 97) % 256)
    draw = ImageDraw.Draw(image)
    for i in range(3):
        left = (width // 8) * (i * 2 + 1) + seed * 7 % (width // 8)
        colour = ((seed * 60 + i * 80) % 256, (i * 120 + 30) % 256, (255 - seed * 50) % 256)
        draw.rectangle((left, height // 5, left + width // 6, height // 5 + height // 4), fill=colour)
    radius = min(width, height) // 6
    cx, cy = width // 2 + (seed * 37) % (width // 4), height * 2 // 3
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, kind, **({"quality": 95} if kind == "JPEG" else {}))
    return out.getvalue()


def difference(frame: bytes | Image.Image, reference: bytes | Image.Image) -> float:
    """Mean absolute pixel difference between a frame and a picture cropped to cover it (0–255)."""
    frame_image = _image(frame)
    cropped = ImageOps.fit(_image(reference), frame_image.size, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    diff = ImageChops.difference(frame_image, cropped)
    return sum(ImageStat.Stat(diff).mean) / 3


def _image(data: bytes | Image.Image) -> Image.Image:
    if isinstance(data, Image.Image):
        return data.convert("RGB")
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def first_frame(mp4: bytes) -> Image.Image:
    return _frame(mp4, ["-frames:v", "1"])


def last_frame(mp4: bytes) -> Image.Image:
    return _frame(mp4, ["-update", "1"], seek_from_end=True)


def _frame(mp4: bytes, output_options: list[str], *, seek_from_end: bool = False) -> Image.Image:
    with tempfile.TemporaryDirectory(prefix="frames-") as workdir:
        source, target = Path(workdir) / "video.mp4", Path(workdir) / "frame.png"
        source.write_bytes(mp4)
        seek = ["-sseof", "-1"] if seek_from_end else []
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", *seek, "-i", str(source)]
        subprocess.run([*command, *output_options, "-y", str(target)], check=True, capture_output=True, timeout=60)
        with Image.open(target) as image:
            return image.convert("RGB")
