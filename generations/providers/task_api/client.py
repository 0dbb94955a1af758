"""Reverse / aggregator task API: `@char_id` in the prompt, one price per request.

# Reference: the seed document (../shared/seed), section on reverse APIs; PRODUCT.md `task_api`.
"""

from __future__ import annotations

import base64
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
from generations.providers.offers import arguments_for, fill_arguments

# Seen in the wild; each provider picks its own words for the same four states.
STATUS_SYNONYMS = {
    "queued": QUEUED,
    "pending": QUEUED,
    "submitted": QUEUED,
    "waiting": QUEUED,
    "processing": RUNNING,
    "in_progress": RUNNING,
    "running": RUNNING,
    "generating": RUNNING,
    "completed": COMPLETED,
    "succeeded": COMPLETED,
    "success": COMPLETED,
    "done": COMPLETED,
    "failed": FAILED,
    "error": FAILED,
    "failure": FAILED,
    "cancelled": FAILED,
    "canceled": FAILED,
}


def normalise_status(value) -> str:
    status = STATUS_SYNONYMS.get(str(value or "").strip().lower())
    if status is None:
        raise ProviderError(
            f"The backend reported an unknown task status {str(value)[:40]!r}.", code="invalid_response", transient=True
        )
    return status


def _data_uri(image: ReferenceImage) -> str:
    return f"data:{image.content_type};base64,{base64.b64encode(image.content).decode('ascii')}"


def _id(data: dict, key: str) -> str:
    value = data.get(key)
    if value is None and isinstance(data.get("data"), dict):  # some aggregators wrap answers in "data"
        value = data["data"].get(key)
    if not isinstance(value, str) or not value:
        raise ProviderError(f"The backend did not return a {key}.", code="invalid_response", transient=True)
    return value


class TaskAPIClient:
    protocol = "task_api"

    def __init__(self, backend):
        self.backend = backend
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
        # Characters travel by native id here, so `images` (reference stills) are not sent.
        # Characters travel inside the prompt as @char_id mentions; model and size are the provider's.
        body = {"prompt": prompt, "duration": int(seconds)}
        # An aggregator's own fields (an image field, say) where the backend's offer spells them out; the
        # prompt and duration are the protocol's and stay as they are.
        arguments = arguments_for(self.backend.offer().get(model) or {}, {}, end_image=end_image is not None)
        values = {"prompt": prompt, "seconds": int(seconds), "size": size, "image": None}
        values["start_image"] = values["image"] = _data_uri(start_image) if start_image else None
        values["end_image"] = _data_uri(end_image) if end_image else None
        extra = fill_arguments(arguments, values)
        body.update({name: value for name, value in extra.items() if name not in body})
        data = self.http.json(
            "POST",
            "sora/generate",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
            is_create=True,
        )
        return RemoteJob(id=_id(data, "task_id"), status=QUEUED, raw=data)

    def retrieve(self, remote_id: str) -> RemoteJob:
        data = self.http.json("GET", f"sora/tasks/{remote_id}")
        status = normalise_status(data.get("status"))
        error = data.get("error")
        if isinstance(error, dict):
            code, message = str(error.get("code") or ""), str(error.get("message") or "")
        else:
            code, message = "", str(error or "")
        video_url = data.get("video_url") if isinstance(data.get("video_url"), str) else ""
        thumbnail_url = data.get("thumbnail_url") if isinstance(data.get("thumbnail_url"), str) else ""
        if status == COMPLETED and not video_url.startswith(("http://", "https://")):
            raise ProviderError(
                "The backend says the task is done but gave no video URL.", code="invalid_response", transient=True
            )
        try:
            progress = max(0, min(100, int(data.get("progress") or 0)))
        except (TypeError, ValueError):
            progress = 0
        return RemoteJob(
            id=remote_id,
            status=status,
            progress=100 if status == COMPLETED else progress,
            error_code=code or ("task_failed" if status == FAILED else ""),
            error_message=message,
            video_url=video_url,
            thumbnail_url=thumbnail_url,
            raw=data,
        )

    def download(self, job: RemoteJob, variant: str, dest: IO[bytes]) -> int:
        url = job.video_url if variant == "video" else job.thumbnail_url
        if not url:
            raise ProviderError(f"The backend offers no {variant} for this task.", code="no_asset")
        return self.http.download(url, dest)

    def remix(self, remote_id: str, prompt: str, idempotency_key: str) -> RemoteJob:
        raise ProviderError("This backend cannot remix.", code="unsupported")

    def delete(self, remote_id: str) -> None:
        raise ProviderError("This backend cannot delete tasks.", code="unsupported")

    def find_recent(self, lost: LostCreate) -> list[RemoteJob]:
        return []  # the protocol has no task list to reconcile against

    def create_character(self, *, name: str, description: str, clip: IO[bytes] | None, clip_url: str) -> str:
        data = self.http.json(
            "POST", "sora/characters", json={"video_url": clip_url, "name": name, "description": description}
        )
        return _id(data, "character_id")

    def extract_character(self, task_id: str, name: str) -> str:
        data = self.http.json("POST", "sora/characters/extract", json={"task_id": task_id, "name": name})
        return _id(data, "character_id")
