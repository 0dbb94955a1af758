"""The clip a protocol registers a character from, cut to the length it accepts.

The OpenAI Videos API takes a 2–4 s clip for a character; a creator's clip is often longer, so the
first seconds are re-encoded (H.264, with the static ffmpeg imageio-ffmpeg ships) rather than refused.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from contextlib import contextmanager

import imageio_ffmpeg

from characters.avatars import SAFE_INPUT
from sora_studio.files import local_path

log = logging.getLogger(__name__)


@contextmanager
def for_registration(field_file, seconds: tuple[int, int] | None):
    """An open file of the clip as the protocol wants it: the stored clip, or its first `seconds[1]` s."""
    if seconds is None:
        with field_file.open("rb") as clip:
            yield clip
        return
    longest = seconds[1]
    with local_path(field_file) as path:
        try:
            _frames, duration = imageio_ffmpeg.count_frames_and_secs(path)
        except (OSError, RuntimeError):
            duration = 0  # not readable here: let the provider say what is wrong with it
        if duration <= longest:
            with open(path, "rb") as clip:
                yield clip
            return
        with tempfile.NamedTemporaryFile(suffix=".mp4") as cut:
            command = [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-y",
                *SAFE_INPUT,
                "-i",
                path,
                "-t",
                str(longest),
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+faststart",
                "-an",
                cut.name,
            ]
            try:
                result = subprocess.run(command, capture_output=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                result = subprocess.CompletedProcess(command, 1, b"", str(exc).encode())
            if result.returncode != 0:
                log.warning(
                    "clips: could not cut %s: %s", field_file.name, result.stderr.decode(errors="replace")[-300:]
                )
                with open(path, "rb") as clip:
                    yield clip
                return
            with open(cut.name, "rb") as clip:
                yield clip
