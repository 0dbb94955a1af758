"""The OpenAI Videos API's shapes: the Video and character objects, ids, and errors.

Reference: https://platform.openai.com/docs/api-reference/videos and, for the exact fields, the installed
`openai` package (`openai/types/video.py`, `video_create_character_response.py`, `pagination.py`).
Everything here is read from the studio's own rows: answering a client never calls a provider.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone

from generations.jobs.models import Generation
from generations.states import IN_FLIGHT, Status

VIDEO_PREFIX = "video_"
CHARACTER_PREFIX = "char_"
# The studio's states as the API's four: what a client of OpenAI's API knows how to wait for.
STATUS = {
    Status.QUEUED: "queued",
    Status.SUBMITTING: "queued",
    Status.SUBMITTED: "queued",
    Status.IN_PROGRESS: "in_progress",
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.TIMED_OUT: "failed",
    Status.CANCELLED: "failed",
    Status.UNKNOWN: "failed",
}
POLL_AFTER_MS = (200, 10_000)


class ApiError(Exception):
    """An answer in OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`.

    `retry` False adds `x-should-retry: false`, which the openai SDK obeys: it would otherwise retry
    409s and 429s on its own (a refused budget or a reused Idempotency-Key will not change by waiting).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        retry: bool | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.retry, self.headers = retry, headers or {}

    def response(self) -> JsonResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        if self.retry is not None:
            response["x-should-retry"] = "true" if self.retry else "false"
        return response


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code, retry=False)


def video_id(generation: Generation) -> str:
    return f"{VIDEO_PREFIX}{generation.uuid.hex}"


def parse_id(text: str, prefix: str) -> uuid.UUID | None:
    """The uuid in `video_<hex>` / `char_<hex>`, or None for anything else."""
    if not isinstance(text, str) or not text.startswith(prefix) or len(text) != len(prefix) + 32:
        return None
    try:
        return uuid.UUID(hex=text[len(prefix) :])
    except ValueError:
        return None


def not_found(what: str, given: str, param: str) -> ApiError:
    shown = given if len(given) <= 80 else given[:80] + "…"
    return ApiError(404, f"No {what} with id '{shown}'.", param=param, code="not_found", retry=False)


def _timestamp(moment) -> int | None:
    return int(moment.timestamp()) if moment else None


def video(generation: Generation) -> dict:
    """The Video object. `expires_at` is null: the studio keeps the video (no provider link to expire)."""
    # A reverse one-to-one without a row raises RelatedObjectDoesNotExist, an AttributeError: getattr's default.
    link = getattr(generation, "api_link", None)
    source = (link.remixed_from if link else None) or generation.remix_of
    status = STATUS.get(generation.status, "queued")
    error = None
    if status == "failed":
        error = {
            "code": generation.error_code or generation.status,
            "message": generation.error_message or f"The video ended {generation.get_status_display().lower()}.",
        }
    return {
        "id": video_id(generation),
        "object": "video",
        "model": generation.model,
        "status": status,
        "progress": 100 if status == "completed" else generation.progress,
        "created_at": _timestamp(generation.created_at),
        "completed_at": _timestamp(generation.completed_at) if status == "completed" else None,
        "expires_at": None,
        "prompt": generation.prompt,
        "seconds": str(generation.seconds),
        "size": generation.size,
        "remixed_from_video_id": video_id(source) if source is not None else None,
        "error": error,
    }


def poll_after_ms(generation: Generation) -> int:
    """When a client should look again: a moment after the studio's own next look at the provider (a
    running job), else the studio's poll interval; never sooner than 0.2 s nor later than 10 s."""
    seconds = settings.GENERATION_POLL_INTERVAL
    if generation.status in IN_FLIGHT and generation.next_poll_at:
        seconds = max(seconds, (generation.next_poll_at - timezone.now()).total_seconds() + 0.1)
    low, high = POLL_AFTER_MS
    return int(min(max(seconds * 1000, low), high))


def video_response(generation: Generation, status: int = 200) -> JsonResponse:
    body = video(generation)
    response = JsonResponse(body, status=status)
    if body["status"] in ("queued", "in_progress"):
        response["openai-poll-after-ms"] = str(poll_after_ms(generation))
    return response


def character(api_character, *, status: int = 200) -> JsonResponse:
    """The character object (`id`, `name`, `created_at`) plus its `handle`: write `@handle` in a prompt."""
    character = api_character.character
    return JsonResponse(
        {
            "id": f"{CHARACTER_PREFIX}{api_character.public_id.hex}",
            "object": "character",
            "name": character.name,
            "handle": character.handle,
            "created_at": _timestamp(api_character.created_at),
        },
        status=status,
    )
