"""Runway's API: a task per video, polled until it has an output URL.

# Reference: https://docs.dev.runwayml.com/api/ and the official SDK, runwayml-python:
# src/runwayml/resources/{text_to_video,image_to_video,tasks}.py, src/runwayml/types/task_retrieve_response.py
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import IO

import requests

from generations.providers.base import (
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    KeepsNoCharacters,
    LostCreate,
    ProviderError,
    ReferenceImage,
    RemoteJob,
)
from generations.providers.http import HTTPClient

# The API version this client speaks; Runway refuses a request without it.
RUNWAY_VERSION = "2024-11-06"

_STATUS = {
    "PENDING": QUEUED,
    "THROTTLED": QUEUED,  # THROTTLED: waiting for one of the organisation's concurrency slots
    "RUNNING": RUNNING,
    "SUCCEEDED": COMPLETED,
    "FAILED": FAILED,
    "CANCELLED": FAILED,
}
# What a moderation failure code says was flagged (https://docs.dev.runwayml.com/errors/task-failures/).
_FLAGGED = {
    "SAFETY.INPUT.TEXT": "the prompt",
    "SAFETY.INPUT.IMAGE": "the reference image",
    "SAFETY.OUTPUT": "the generated video",
}


def runway_auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Runway-Version": RUNWAY_VERSION}


def ratio_of(size: str) -> str:
    """The studio's "1280x720" as Runway writes it: "1280:720"."""
    width, _, height = size.lower().partition("x")
    return f"{width}:{height}"


def data_uri(image: ReferenceImage) -> str:
    return f"data:{image.content_type};base64,{base64.b64encode(image.content).decode()}"


def parse_task(data: dict) -> RemoteJob:
    """Validate a task strictly: an unknown status, a missing id or a success without output is a bad answer."""
    task_id = data.get("id")
    status = _STATUS.get(data.get("status")) if isinstance(data.get("status"), str) else None
    if not isinstance(task_id, str) or not task_id or status is None:
        raise ProviderError(
            "Runway answered with an object that is not a task.", code="invalid_response", transient=True
        )
    output = data.get("output") or []
    video_url = output[0] if isinstance(output, list) and output and isinstance(output[0], str) else ""
    if status == COMPLETED and not video_url.startswith(("http://", "https://")):
        raise ProviderError(
            "Runway says the task succeeded but gave no output URL.", code="invalid_response", transient=True
        )
    progress = data.get("progress")
    # A 0-1 fraction while RUNNING; 100 is kept for a finished video.
    percent = int(progress * 100) if isinstance(progress, int | float) and 0 <= progress <= 1 else 0
    code, message = "", ""
    if data.get("status") == "FAILED":
        code = str(data.get("failureCode") or "task_failed")[:80]
        message = str(data.get("failure") or "Runway reported the task as failed.")[:500]
        flagged = next((what for prefix, what in _FLAGGED.items() if code.startswith(prefix)), None)
        if flagged:
            message = f"Runway's moderation refused {flagged} ({code}): {message}"
    elif data.get("status") == "CANCELLED":
        code, message = "cancelled", "The task was cancelled on Runway."
    return RemoteJob(
        id=task_id,
        status=status,
        progress=100 if status == COMPLETED else max(0, min(99, percent)),
        error_code=code,
        error_message=message,
        video_url=video_url,
        raw=data,
    )


class RunwayHTTP(HTTPClient):
    """Runway's errors are `{"error": "..."}`, with `issues` when the body failed validation."""

    def error_from(self, response: requests.Response, *, is_create: bool) -> ProviderError:
        error = super().error_from(response, is_create=is_create)
        issues = _issues(response)
        if issues:
            error.message = f"{error.message}: {issues}"
        if response.status_code in (401, 403):
            error.code = "invalid_api_key" if response.status_code == 401 else "forbidden"
            error.message = f"Runway refused the request (HTTP {response.status_code}): {error.message}"
        return error


def _issues(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    issues = data.get("issues") if isinstance(data, dict) else None
    if not isinstance(issues, list):
        return ""
    parts = []
    for issue in issues[:5]:
        if isinstance(issue, dict):
            path = ".".join(str(part) for part in issue.get("path") or [])
            parts.append(f"{path}: {issue.get('message')}" if path else str(issue.get("message")))
    return "; ".join(parts)[:400]


class RunwayClient(KeepsNoCharacters):
    protocol = "runway"

    def __init__(self, backend):
        self.http = RunwayHTTP(backend, auth=runway_auth)

    def create(
        self,
        *,
        prompt: str,
        model: str,
        seconds,
        size: str,
        characters: list[str],
        idempotency_key: str,
        images: Sequence[ReferenceImage] = (),
        start_image: ReferenceImage | None = None,
        end_image: ReferenceImage | None = None,
    ) -> RemoteJob:
        # Runway takes no idempotency key (a lost answer is never re-sent, see lifecycle.resolve_lost_submit).
        # The first frame is the creator's start image, else the first character's still; an end image goes at
        # position "last" (the router sends one only to a model that takes it).
        body = {"model": model, "promptText": prompt, "ratio": ratio_of(size), "duration": int(seconds)}
        endpoint = "text_to_video"
        first = start_image or (images[0] if images else None)
        if first is not None:
            body["promptImage"] = data_uri(first)
            endpoint = "image_to_video"
        if first is not None and end_image is not None:
            body["promptImage"] = [
                {"uri": data_uri(first), "position": "first"},
                {"uri": data_uri(end_image), "position": "last"},
            ]
        data = self.http.json("POST", endpoint, json=body, is_create=True)
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(
                "Runway did not return a task id.", code="invalid_response", transient=True, maybe_sent=True
            )
        return RemoteJob(id=task_id, status=QUEUED, seconds=str(int(seconds)), raw=data)

    def retrieve(self, remote_id: str) -> RemoteJob:
        return parse_task(self.http.json("GET", f"tasks/{remote_id}"))

    def download(self, job: RemoteJob, variant: str, dest: IO[bytes]) -> int:
        return self.http.download_output(job, variant, dest)  # the video alone, from the provider's CDN

    def remix(self, remote_id: str, prompt: str, idempotency_key: str) -> RemoteJob:
        raise ProviderError("Runway has no remix of a finished video.", code="unsupported")

    def delete(self, remote_id: str) -> None:
        try:
            self.http.request("DELETE", f"tasks/{remote_id}")
        except ProviderError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise

    def find_recent(self, lost: LostCreate) -> list[RemoteJob]:
        return []  # Runway has no task list to reconcile against
