"""The OpenAI Videos API shape, as served by OpenAI and by gateways (LiteLLM, new-api, ...).

# Reference: https://platform.openai.com/docs/api-reference/videos
# and the official SDK, openai-python: src/openai/resources/videos.py, src/openai/types/video.py
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from generations.providers.base import (
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    LostCreate,
    ProviderError,
    ReferenceImage,
    RemoteJob,
)
from generations.providers.http import HTTPClient

_STATUS = {"queued": QUEUED, "in_progress": RUNNING, "completed": COMPLETED, "failed": FAILED}


def parse_video(data: dict, poll_after_ms: str | None = None) -> RemoteJob:
    """Validate a Video object strictly: an unknown status or a missing id is a bad answer."""
    video_id = data.get("id")
    status = _STATUS.get(data.get("status")) if isinstance(data.get("status"), str) else None
    if not isinstance(video_id, str) or not video_id or status is None:
        raise ProviderError(
            "The backend answered with an object that is not a Video.", code="invalid_response", transient=True
        )
    error = data.get("error") or {}
    progress = data.get("progress") or 0
    try:
        progress = max(0, min(100, int(progress)))
    except (TypeError, ValueError):
        progress = 0
    poll_after = None
    if poll_after_ms:
        try:
            poll_after = max(int(poll_after_ms), 0) / 1000
        except ValueError:
            pass
    return RemoteJob(
        id=video_id,
        status=status,
        progress=100 if status == COMPLETED else progress,
        error_code=str(error.get("code") or "") if isinstance(error, dict) else "",
        error_message=str(error.get("message") or "") if isinstance(error, dict) else str(error),
        seconds=str(data.get("seconds") or ""),
        poll_after=poll_after,
        raw=data,
    )


class OpenAIVideosClient:
    protocol = "openai_videos"

    def __init__(self, backend):
        self.http = HTTPClient(backend)

    def create(
        self,
        *,
        prompt: str,
        model: str,
        seconds: int,
        size: str,
        characters: list[str],
        idempotency_key: str,
        images: Sequence[ReferenceImage] = (),
        start_image: ReferenceImage | None = None,
        end_image: ReferenceImage | None = None,
    ) -> RemoteJob:
        # Characters travel by native id here, so `images` (reference stills) are not sent; the API takes no end
        # image (the router never sends one here).
        body = {"prompt": prompt, "model": model, "seconds": str(seconds), "size": size}  # the API takes "4"
        headers = {"Idempotency-Key": idempotency_key}
        if start_image is None:
            if characters:
                body["characters"] = [{"id": remote_id} for remote_id in characters]
            data, answer_headers = self.http.json_and_headers(
                "POST", "videos", json=body, headers=headers, is_create=True
            )
        else:
            # The image goes as a file, as the openai SDK sends it: multipart, the characters spelt with brackets.
            # It is the video's size already (generations.jobs.images crops it), which OpenAI requires.
            fields = list(body.items()) + [("characters[][id]", remote_id) for remote_id in characters]
            upload = {"input_reference": (start_image.name, start_image.content, start_image.content_type)}
            data, answer_headers = self.http.json_and_headers(
                "POST", "videos", data=fields, files=upload, headers=headers, is_create=True
            )
        return parse_video(data, answer_headers.get("openai-poll-after-ms"))

    def retrieve(self, remote_id: str) -> RemoteJob:
        response = self.http.request("GET", f"videos/{remote_id}")
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(
                "The backend answered with something that is not JSON.", code="invalid_response", transient=True
            ) from None
        if not isinstance(data, dict):
            raise ProviderError("The backend answered with unexpected JSON.", code="invalid_response", transient=True)
        return parse_video(data, response.headers.get("openai-poll-after-ms"))

    def download(self, job: RemoteJob, variant: str, dest: IO[bytes]) -> int:
        return self.http.download(f"videos/{job.id}/content", dest, params={"variant": variant})

    def remix(self, remote_id: str, prompt: str, idempotency_key: str) -> RemoteJob:
        data, headers = self.http.json_and_headers(
            "POST",
            f"videos/{remote_id}/remix",
            json={"prompt": prompt},
            headers={"Idempotency-Key": idempotency_key},
            is_create=True,
        )
        return parse_video(data, headers.get("openai-poll-after-ms"))

    def delete(self, remote_id: str) -> None:
        self.http.request("DELETE", f"videos/{remote_id}")

    def find_recent(self, lost: LostCreate) -> list[RemoteJob]:
        """Reconcile a create whose answer was lost: recent videos of the same request, made while it was sent."""
        data = self.http.json("GET", "videos", params={"limit": 50, "order": "desc"})
        items = data.get("data") if isinstance(data.get("data"), list) else []
        return [
            parse_video(item)
            for item in items
            if isinstance(item, dict)
            and item.get("prompt") == lost.prompt
            and item.get("model") in (None, lost.model)
            and str(item.get("seconds") or lost.seconds) == str(lost.seconds)
            and item.get("size") in (None, lost.size)
            and isinstance(item.get("created_at"), int | float)
            and lost.in_window(item["created_at"])
        ]

    def create_character(self, *, name: str, description: str, clip: IO[bytes] | None, clip_url: str) -> str:
        if clip is None:
            raise ProviderError("This backend needs the character's clip as a file.", code="clip_required")
        data = self.http.json(
            "POST", "videos/characters", data={"name": name}, files={"video": ("clip.mp4", clip, "video/mp4")}
        )
        remote_id = data.get("id")
        if not isinstance(remote_id, str) or not remote_id:
            raise ProviderError("The backend did not return a character id.", code="invalid_response", transient=True)
        return remote_id

    def extract_character(self, task_id: str, name: str) -> str:
        raise ProviderError("The OpenAI Videos API cannot extract a character from a video id.", code="unsupported")
